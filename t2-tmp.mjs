let t0 = performance.now();
let a = new Int32Array(1 << 19).fill(-1);
let t1 = performance.now();
const b = new Int32Array(1 << 18); b.fill(7);
let t2 = performance.now();
const mask = a.length - 1; for (let i = 0; i < b.length; i++) { let s = (Math.imul(i, 0x9e3779b1)) & mask; while (a[s] >= 0) s = (s + 1) & mask; a[s] = i; }
let t3 = performance.now();
const c = new Uint8Array(1<<22); c.set(new Uint8Array(1<<21));
let t4 = performance.now();
console.log(`alloc+fill 2MB ${(t1-t0).toFixed(2)} ms, fill ${(t2-t1).toFixed(2)}, reinsert ${(t3-t2).toFixed(2)}, grow 4MB ${(t4-t3).toFixed(2)}`);
