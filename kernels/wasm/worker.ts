// The source of a compute worker, as a string: it runs from a Blob URL in browsers and with `eval` in
// Node, so no bundler or loader has to find and transpile a separate entry file. A worker instantiates
// the kernel module it is sent on the shared memory, says it is ready, then serves fork-join jobs until
// told to quit. A job may name a further module (a slot): its bytes are in the shared memory, and the
// worker compiles and instantiates it the first time it accepts a job of that slot, then keeps it. So a
// pool serves any number of modules specialised at run time without a message (a worker blocked in
// Atomics.wait never sees one) and without a worker per module.
// The protocol (word indices of the control block, an Int32Array at byte address `ctrl`):
//   GEN      bumped by the caller to publish a job; -1 tells workers to quit
//   PENDING  workers still inside the current job; the last one out notifies
//   NEXT     next chunk index to claim (Atomics.add), COUNT chunks in the job, JOB the job's byte address
//   FAILED   set when a worker's task threw: the caller redoes the job on its own thread
//   SLOT     the job's module: 0 the one sent at start; else the module whose MOD_LEN bytes are at byte
//            address MOD_AT (written before the job is published, unchanged until every worker has left)
//   READY+id set once worker `id` is instantiated; JOINED+id holds the GEN that worker is asked to join,
//            which the worker swaps for -1 to accept, or the caller for 0 to withdraw the request
// Each participant claims chunks until none are left and calls the module's task(job, chunk, id).
// Kept in plain JavaScript (ES2017) on purpose: it is never transpiled.

export const CTRL = { GEN: 0, PENDING: 1, NEXT: 2, COUNT: 3, JOB: 4, FAILED: 5, SLOT: 6, MOD_AT: 7, MOD_LEN: 8, READY: 16, JOINED: 80 } as const;
/** Control block size in bytes: room for 64 threads' READY and JOINED words. */
export const CTRL_BYTES = 4 * (CTRL.JOINED + 64);

export const WORKER_SOURCE = `
'use strict';
const C = ${JSON.stringify(CTRL)};
function instantiate(module, memory) { return new WebAssembly.Instance(module, { env: { memory: memory } }).exports.task; }
function serve(d) {
  const tasks = [instantiate(d.module, d.memory)];
  // The control block sits in the first page, which never moves when the memory grows.
  const v = new Int32Array(d.memory.buffer, d.ctrl, ${CTRL.JOINED + 64});
  let seen = Atomics.load(v, C.GEN);
  Atomics.store(v, C.READY + d.id, 1);
  for (;;) {
    Atomics.wait(v, C.GEN, seen);
    seen = Atomics.load(v, C.GEN);
    if (seen === -1) return;
    // Accept the job, unless the caller withdrew this worker (it finished every chunk before we woke).
    if (Atomics.compareExchange(v, C.JOINED + d.id, seen, -1) !== seen) continue;
    try {
      const job = Atomics.load(v, C.JOB), count = Atomics.load(v, C.COUNT), slot = Atomics.load(v, C.SLOT);
      if (!tasks[slot]) {
        // slice() copies into an unshared buffer: WebAssembly.Module does not take views of shared memory.
        const at = Atomics.load(v, C.MOD_AT), bytes = new Uint8Array(d.memory.buffer, at, Atomics.load(v, C.MOD_LEN)).slice();
        tasks[slot] = instantiate(new WebAssembly.Module(bytes), d.memory);
      }
      const task = tasks[slot];
      for (let c = Atomics.add(v, C.NEXT, 1); c < count; c = Atomics.add(v, C.NEXT, 1)) task(job, c, d.id);
    } catch (e) {
      Atomics.store(v, C.FAILED, 1);
    }
    if (Atomics.sub(v, C.PENDING, 1) === 1) Atomics.notify(v, C.PENDING);
  }
}
if (typeof process === 'object' && process.versions && process.versions.node) {
  // import(), not require: the worker may be evaluated as a module (a parent run with --input-type=module).
  import('node:worker_threads').then((wt) => { serve(wt.workerData); wt.parentPort.close(); });
} else {
  self.onmessage = (e) => { serve(e.data); self.close(); };
}
`;
