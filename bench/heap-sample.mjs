/**
 * Where a relayed round trip's JavaScript allocations come from. Load it into the azdb child:
 *
 *   AZDB_BENCH_NODE_FLAGS="--max-semi-space-size=1 --import=$PWD/bench/heap-sample.mjs" npm run bench
 *
 * V8's sampling heap profiler (a sample every 256 allocated bytes, objects the GC has collected
 * since included) runs from the start. Each SIGUSR2 to the child writes what was allocated since
 * the previous one to bench/results/profiles/heap-sample-PID-TIME.json, with the socket writes
 * made meanwhile (a relayed round trip is two: to the server and back to the client), and starts
 * over; so two signals some seconds apart in a steady row give that window. Summarise with
 * `node bench/heap-sample-top.mjs FILE`. Sampling costs CPU: read bytes from it, not TPS.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { Session } from 'node:inspector';
import net from 'node:net';

const directory = new URL('./results/profiles/', import.meta.url);
let writes = 0;
const write = net.Socket.prototype.write;
net.Socket.prototype.write = function countedWrite(...args) {
  writes++;
  return write.apply(this, args);
};

const session = new Session();
session.connect();
session.post('HeapProfiler.enable');
const options = { samplingInterval: 256, includeObjectsCollectedByMajorGC: true, includeObjectsCollectedByMinorGC: true };
let writesAtStart = 0;
const start = () => {
  session.post('HeapProfiler.startSampling', options);
  writesAtStart = writes;
};
start();
process.on('SIGUSR2', () => {
  session.post('HeapProfiler.getSamplingProfile', (error, result) => {
    if (error) throw error;
    mkdirSync(directory, { recursive: true });
    const file = new URL(`heap-sample-${process.pid}-${Date.now()}.json`, directory);
    writeFileSync(file, JSON.stringify({ roundTrips: (writes - writesAtStart) / 2, profile: result.profile }));
    session.post('HeapProfiler.stopSampling');
    start();
  });
});
