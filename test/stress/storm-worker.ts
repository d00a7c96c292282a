// Worker side of test/stress/storm.ts: attaches, then churns small blocks (malloc/free over a
// ring, every 4th block traded through the shared array, collect() every 4096 blocks so workers
// reclaim too) until terminated or its round's stop word is set.
import { parentPort, workerData } from "node:worker_threads";
import { attach, bytes, collect, free, malloc, type WorkerHandle } from "../../mod.ts";

attach(workerData.handle as WorkerHandle);
const transfer = new BigInt64Array(workerData.transfer as SharedArrayBuffer);
const counter = new Int32Array(workerData.counter as SharedArrayBuffer);
const stop = workerData.stop as number;
const sizes = workerData.sizes as number;
const ring = new Float64Array(256);
let seed = (workerData.seed as number) | 1;
const stamp = (p: number) => new DataView(bytes(p, 8).buffer, bytes(p, 8).byteOffset).setFloat64(0, p, true);
const stamped = (p: number) => new DataView(bytes(p, 8).buffer, bytes(p, 8).byteOffset).getFloat64(0, true) === p;
parentPort!.postMessage("started");
for (let i = 0; (i & 255) !== 0 || Atomics.load(counter, stop) === 0; i++) {
  seed ^= seed << 13;
  seed ^= seed >>> 17;
  seed ^= seed << 5;
  const k = (seed >>> 0) & 255;
  if (ring[k] !== 0) free(ring[k]);
  const p = malloc(16 + ((seed >>> 8) % sizes));
  stamp(p);
  ring[k] = p;
  if ((i & 3) === 0) {
    const old = Atomics.exchange(transfer, k % transfer.length, BigInt(p));
    ring[k] = 0;
    if (old !== 0n) {
      if (!stamped(Number(old))) Atomics.add(counter, 1, 1);
      free(Number(old));
    }
  }
  if ((i & 4095) === 4095) collect();
  Atomics.add(counter, 0, 1);
}
