// hadns console: plain ES module, no build step. Reads the node's JSON API on the same origin and
// follows /api/v1/stream (Server-Sent Events read with fetch, so the bearer token can be sent in a
// header instead of the URL). All data is put in the page with textContent, never as HTML.

const $ = (id) => document.getElementById(id);
const TOKEN_KEY = 'hadns.token';
const HISTORY = 60;

const state = {
  token: localStorage.getItem(TOKEN_KEY) || '',
  last: null,          // previous stats tick: { t, queries }
  qps: [],             // queries per second history
  lat: [],             // mean upstream srtt history
  records: [],
  editing: null,       // id of the record being edited
};

// ---------- helpers ----------
function el(tag, attrs = {}, ...children) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (k === 'class') e.className = v;
    else if (k === 'text') e.textContent = v;
    else if (k.startsWith('on')) e.addEventListener(k.slice(2), v);
    else e.setAttribute(k, v);
  }
  for (const c of children) if (c !== null && c !== undefined) e.append(c instanceof Node ? c : document.createTextNode(String(c)));
  return e;
}
const fmt = (n) => (n === undefined || n === null ? '–' : Number(n).toLocaleString('en-US'));
const pct = (a, b) => (b > 0 ? `${((100 * a) / b).toFixed(1)}%` : '–');
const hhmmss = (t) => new Date(t).toTimeString().slice(0, 8);
function dur(s) {
  const d = Math.floor(s / 86400), h = Math.floor((s % 86400) / 3600), m = Math.floor((s % 3600) / 60);
  return d ? `${d}d ${h}h` : h ? `${h}h ${m}m` : m ? `${m}m ${s % 60}s` : `${s}s`;
}
function headers(json) {
  const h = {};
  if (state.token) h.Authorization = `Bearer ${state.token}`;
  if (json) h['Content-Type'] = 'application/json';
  return h;
}
async function api(method, path, body) {
  const res = await fetch(path, { method, headers: headers(body !== undefined), body: body === undefined ? undefined : JSON.stringify(body) });
  let data = null;
  try { data = await res.json(); } catch { /* empty body */ }
  if (!res.ok) {
    const err = new Error((data && data.error) || `HTTP ${res.status}`);
    err.status = res.status;
    throw err;
  }
  return data;
}
function banner(text) {
  const b = $('banner');
  b.textContent = text || '';
  b.classList.toggle('hidden', !text);
}
function spark(svgId, values) {
  const pl = $(svgId).querySelector('polyline');
  if (values.length < 2) { pl.setAttribute('points', ''); return; }
  const max = Math.max(...values, 1e-9);
  const step = 120 / (HISTORY - 1);
  const off = (HISTORY - values.length) * step;
  pl.setAttribute('points', values.map((v, i) => `${(off + i * step).toFixed(1)},${(29 - (v / max) * 27).toFixed(1)}`).join(' '));
}
function rows(tbody, list) {
  tbody.replaceChildren(...list);
}

// ---------- live status ----------
function renderStatus(st) {
  $('node-name').textContent = st.node;
  document.title = `hadns · ${st.node}`;
  $('node-version').textContent = `v${st.version}`;
  $('node-uptime').textContent = `up ${dur(st.uptimeSec)}`;
  const ready = $('ready');
  ready.textContent = st.ready ? 'ready' : 'not ready';
  ready.className = `badge ${st.ready ? 'good' : 'bad'}`;

  const r = st.resolver;
  // q/s from the difference between two ticks: the node only keeps totals.
  const now = Date.now();
  if (r) {
    if (state.last && now > state.last.t) {
      const q = Math.max(0, r.queries - state.last.queries) / ((now - state.last.t) / 1000);
      state.qps.push(q);
      if (state.qps.length > HISTORY) state.qps.shift();
      $('qps').textContent = q < 10 ? q.toFixed(1) : fmt(Math.round(q));
      spark('qps-spark', state.qps);
    }
    state.last = { t: now, queries: r.queries };
    const ups = r.upstreams.filter((u) => u.sent > 0);
    const mean = ups.length ? ups.reduce((a, u) => a + u.srttMs, 0) / ups.length : null;
    if (mean !== null) {
      state.lat.push(mean);
      if (state.lat.length > HISTORY) state.lat.shift();
      $('latency').textContent = `${mean.toFixed(1)} ms`;
      spark('latency-spark', state.lat);
    } else $('latency').textContent = '–';
    const lookups = r.cache.hits + r.cache.misses;
    $('hit-ratio').textContent = pct(r.cache.hits, lookups);
    $('cache-detail').textContent = `${fmt(r.cache.entries)} entries · ${fmt(r.cache.hits)} hits · ${fmt(r.cache.misses)} misses · ${fmt(r.cache.evictions)} evicted`;
    $('q-total').textContent = fmt(r.queries);
    const s = r.bySource;
    $('q-sources').textContent = `local ${fmt(s.local)} · cache ${fmt(s.cache)} · upstream ${fmt(s.upstream)} · stale ${fmt(s.stale)} · failed ${fmt((s.servfail || 0) + (s.refused || 0))}`;
    rows($('listeners'), r.listen.map((l) => el('li', { text: l })));
    rows($('upstreams').tBodies[0], r.upstreams.map((u) => el('tr', {},
      el('td', { text: u.label }),
      el('td', { text: u.group || 'default' }),
      el('td', {}, el('span', { class: `dot ${u.failures === 0 ? 'good' : 'bad'}` }), u.failures === 0 ? 'ok' : `failing (${u.failures})`),
      el('td', { text: `${u.srttMs} ms` }),
      el('td', { text: fmt(u.sent) }),
      el('td', { text: fmt(u.answered) }),
    )));
  } else {
    rows($('upstreams').tBodies[0], [el('tr', {}, el('td', { colspan: '6', class: 'muted', text: 'resolver not configured' }))]);
  }
  renderVrrp(st.vrrp);
  renderBackends(st.balancer);
}

function listOf(x, key) { return Array.isArray(x) ? x : x && Array.isArray(x[key]) ? x[key] : []; }

function renderVrrp(v) {
  const inst = listOf(v, 'instances').filter((i) => i && i.state);
  const role = $('vrrp-role');
  if (!inst.length) { role.classList.add('hidden'); return; }
  const master = inst.filter((i) => String(i.state).toUpperCase() === 'MASTER');
  role.textContent = master.length === inst.length ? 'MASTER' : master.length ? `MASTER ${master.length}/${inst.length}` : String(inst[0].state).toUpperCase();
  role.className = `badge ${master.length ? 'accent' : ''}`;
  rows($('vrrp'), inst.map((i) => {
    const s = String(i.state).toUpperCase();
    const vips = i.vips || i.virtual_ipaddress || [];
    return el('div', { class: 'vrrp-inst' },
      el('span', { class: `badge ${s === 'MASTER' ? 'accent' : s === 'FAULT' ? 'bad' : ''}`, text: s }),
      el('strong', { text: i.name || `vrid ${i.vrid}` }),
      el('span', { class: 'muted small', text: `vrid ${i.vrid}${i.priority !== undefined ? ` · prio ${i.priority}` : ''}${i.master ? ` · master ${i.master}` : ''}` }),
      el('span', { class: 'vips', text: `${vips.join(', ')}${s === 'MASTER' ? ' (held here)' : ''}` }));
  }));
}

function renderBackends(b) {
  const svcs = listOf(b, 'services').filter((s) => s && Array.isArray(s.backends));
  $('backends-wrap').classList.toggle('hidden', svcs.length === 0);
  rows($('backends').tBodies[0], svcs.flatMap((s) => s.backends.map((x) => el('tr', {},
    el('td', { text: `${s.name} (${s.mode})` }),
    el('td', { text: x.address }),
    el('td', {}, el('span', { class: `dot ${x.state === 'up' ? 'good' : 'bad'}` }), x.state),
    el('td', { text: x.latencyMs !== undefined ? `${x.latencyMs} ms` : '' }),
    el('td', { text: fmt(x.outstanding ?? x.active ?? 0) }),
  ))));
}

// ---------- events ----------
function eventItem(e) {
  const kindClass = /fail|error/.test(e.kind) ? 'bad' : e.kind === 'vrrp' ? 'vrrp' : '';
  return el('li', {},
    el('span', { class: 't', text: hhmmss(e.time) }),
    el('span', { class: `k ${kindClass}`, text: e.kind }),
    el('span', { text: e.message }));
}
function setEvents(list) {
  rows($('events'), list.slice().reverse().map(eventItem));
}
function addEvent(e) {
  const ol = $('events');
  ol.prepend(eventItem(e));
  while (ol.children.length > 200) ol.lastChild.remove();
  if (e.kind === 'records' || e.kind === 'reload' || e.kind === 'sync') loadRecords();
}

// ---------- stream ----------
function setLive(on, text) {
  const l = $('live');
  l.classList.toggle('on', on);
  l.textContent = text || (on ? 'live' : 'reconnecting');
}
function onFrame(frame) {
  let name = 'message', data = '';
  for (const line of frame.split('\n')) {
    if (line.startsWith('event:')) name = line.slice(6).trim();
    else if (line.startsWith('data:')) data += line.slice(5).trim();
  }
  if (!data) return;
  const msg = JSON.parse(data);
  if (name === 'hello') { renderStatus(msg.status); setEvents(msg.events); }
  else if (name === 'stats') renderStatus(msg);
  else if (name === 'event') addEvent(msg);
}
async function stream() {
  for (;;) {
    try {
      const res = await fetch('/api/v1/stream', { headers: headers(false) });
      if (!res.ok) {
        let msg = `HTTP ${res.status}`;
        try { msg = (await res.json()).error || msg; } catch { /* not JSON */ }
        if (res.status === 401 || res.status === 403) { banner(`${msg}. Enter the API token.`); $('token-panel').classList.remove('hidden'); }
        setLive(false, 'no access');
        await new Promise((r) => setTimeout(r, 5000));
        continue;
      }
      banner('');
      setLive(true);
      const reader = res.body.pipeThrough(new TextDecoderStream()).getReader();
      let buf = '';
      for (;;) {
        const { value, done } = await reader.read();
        if (done) break;
        buf += value;
        let i;
        while ((i = buf.indexOf('\n\n')) >= 0) {
          const frame = buf.slice(0, i);
          buf = buf.slice(i + 2);
          try { onFrame(frame); } catch (e) { console.error('bad frame', e); }
        }
      }
    } catch { /* connection lost: retry below */ }
    setLive(false);
    await new Promise((r) => setTimeout(r, 2000));
  }
}

// ---------- records ----------
async function loadRecords() {
  try {
    state.records = (await api('GET', '/api/v1/records')).records;
    renderRecords();
  } catch (e) { recMsg(e.message, true); }
}
function recMsg(text, bad) {
  const m = $('rec-msg');
  m.textContent = text || '';
  m.className = `msg ${bad ? 'bad' : 'good'}`;
}
function renderRecords() {
  const f = $('rec-filter').value.trim().toLowerCase();
  const list = state.records.filter((r) => !f || `${r.name} ${r.type} ${[].concat(r.value).join(' ')} ${r.origin}`.toLowerCase().includes(f));
  rows($('records').tBodies[0], list.map((r) => el('tr', { 'data-id': r.id },
    el('td', { text: r.name }),
    el('td', { text: r.type }),
    el('td', { text: [].concat(r.value).join(' ') }),
    el('td', { text: r.ttl ?? '' }),
    el('td', { class: 'muted', text: r.origin }),
    el('td', { class: 'actions' }, ...(r.origin === 'api' ? [
      el('button', { class: 'ghost small', type: 'button', text: 'edit', onclick: () => startEdit(r) }), ' ',
      el('button', { class: 'danger', type: 'button', text: 'delete', onclick: () => removeRecord(r) }),
    ] : [el('span', { class: 'muted small', text: 'read-only' })])),
  )));
}
function startEdit(r) {
  state.editing = r.id;
  $('rec-name').value = r.name;
  $('rec-type').value = r.type;
  $('rec-value').value = [].concat(r.value).join(' ');
  $('rec-ttl').value = r.ttl ?? '';
  $('rec-add').textContent = 'Save';
  $('rec-cancel').classList.remove('hidden');
  $('rec-name').focus();
}
function stopEdit() {
  state.editing = null;
  $('rec-form').reset();
  $('rec-add').textContent = 'Add';
  $('rec-cancel').classList.add('hidden');
}
function needToken(e) {
  if (e.status === 401 || e.status === 403) { $('token-panel').classList.remove('hidden'); $('token-input').focus(); }
}
async function submitRecord(ev) {
  ev.preventDefault();
  const body = { name: $('rec-name').value.trim(), type: $('rec-type').value, value: $('rec-value').value.trim() };
  const ttl = $('rec-ttl').value.trim();
  if (ttl) body.ttl = Number(ttl);
  try {
    if (state.editing) {
      const r = await api('PUT', `/api/v1/records/${encodeURIComponent(state.editing)}`, body);
      recMsg(`changed: ${r.record.name} ${r.record.type} ${[].concat(r.record.value).join(' ')}`);
    } else {
      const r = await api('POST', '/api/v1/records', body);
      recMsg(`added: ${r.record.name} ${r.record.type} ${[].concat(r.record.value).join(' ')}`);
    }
    stopEdit();
    await loadRecords();
  } catch (e) { recMsg(e.message, true); needToken(e); }
}
async function removeRecord(r) {
  if (!confirm(`Delete ${r.name} ${r.type} ${[].concat(r.value).join(' ')}?`)) return;
  try {
    await api('DELETE', `/api/v1/records/${encodeURIComponent(r.id)}`);
    recMsg(`deleted: ${r.id}`);
    if (state.editing === r.id) stopEdit();
    await loadRecords();
  } catch (e) { recMsg(e.message, true); needToken(e); }
}

// ---------- query log ----------
let qlogTimer = null;
let qlogBusy = false;
async function loadQueries() {
  if (qlogBusy) return;
  qlogBusy = true;
  try {
    const q = $('qlog-search').value.trim();
    const data = await api('GET', `/api/v1/queries?limit=200${q ? `&q=${encodeURIComponent(q)}` : ''}`);
    const list = data.queries.slice().reverse();
    rows($('qlog').tBodies[0], list.map((x) => el('tr', {},
      el('td', { text: x.time ? hhmmss(x.time) : '' }),
      el('td', { text: x.client ?? '' }),
      el('td', { text: x.name ?? '' }),
      el('td', { text: x.type ?? '' }),
      el('td', { text: x.rcode ?? '' }),
      el('td', { text: x.source ?? '' }),
      el('td', { text: x.upstream ?? '' }),
      el('td', { text: typeof x.ms === 'number' ? x.ms.toFixed(1) : '' }),
    )));
    $('qlog-empty').classList.toggle('hidden', list.length > 0 || q !== '');
  } catch { /* the stream banner reports access problems */ } finally { qlogBusy = false; }
}
function scheduleQueries() {
  clearInterval(qlogTimer);
  if ($('qlog-follow').checked) qlogTimer = setInterval(loadQueries, 2000);
}

// ---------- token ----------
function saveToken(t) {
  state.token = t;
  if (t) localStorage.setItem(TOKEN_KEY, t); else localStorage.removeItem(TOKEN_KEY);
  $('token-button').textContent = t ? 'API token ✓' : 'API token';
}

// ---------- start ----------
function init() {
  saveToken(state.token);
  $('token-button').addEventListener('click', () => { $('token-panel').classList.toggle('hidden'); $('token-input').value = state.token; });
  $('token-panel').addEventListener('submit', (ev) => {
    ev.preventDefault();
    saveToken($('token-input').value.trim());
    $('token-panel').classList.add('hidden');
    banner('');
    loadRecords();
  });
  $('token-clear').addEventListener('click', () => { saveToken(''); $('token-input').value = ''; });
  $('rec-form').addEventListener('submit', submitRecord);
  $('rec-cancel').addEventListener('click', stopEdit);
  $('rec-filter').addEventListener('input', renderRecords);
  let debounce;
  $('qlog-search').addEventListener('input', () => { clearTimeout(debounce); debounce = setTimeout(loadQueries, 250); });
  $('qlog-follow').addEventListener('change', scheduleQueries);
  loadRecords();
  loadQueries();
  scheduleQueries();
  stream();
}
init();
