/** FrameDeadline (src/util/net.ts), the DNS-over-TCP slow-drip guard, on mocked timers. */
import { test, mock } from 'node:test';
import assert from 'node:assert/strict';
import { FrameDeadline } from '../../src/util/net.js';

test('FrameDeadline: armed by an unfinished message, restarted by a finished one, cleared when none is pending; not while we are the ones paused', () => {
  mock.timers.enable({ apis: ['setTimeout'] });
  try {
    let expired = 0;
    let paused = false;
    const d = new FrameDeadline(1000, () => { expired++; }, () => paused);
    d.update(5, 0); // first bytes of message 1
    mock.timers.tick(600);
    d.update(20, 0); // more of it: the deadline keeps running from its first byte
    mock.timers.tick(399);
    assert.equal(expired, 0);
    mock.timers.tick(1);
    assert.equal(expired, 1, 'message 1 took longer than 1000 ms from its first byte');

    const e = new FrameDeadline(1000, () => { expired++; }, () => paused);
    e.update(5, 0);
    mock.timers.tick(900);
    e.update(3, 1); // message 1 done, message 2 begun: a new deadline
    mock.timers.tick(900);
    assert.equal(expired, 1);
    e.update(0, 2); // message 2 done, nothing pending
    mock.timers.tick(5000);
    assert.equal(expired, 1, 'no deadline without a pending message');

    const f = new FrameDeadline(1000, () => { expired++; }, () => paused);
    f.update(7, 0);
    paused = true; // we stopped reading: the rest sits in our buffer, not the client's fault
    mock.timers.tick(3000);
    assert.equal(expired, 1);
    paused = false;
    mock.timers.tick(1000);
    assert.equal(expired, 2, 'expires once we read again and it still does not come');
    f.clear();
  } finally {
    mock.timers.reset();
  }
});
