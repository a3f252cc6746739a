#!/usr/bin/env node
/**
 * The relay in isolation (docs/performance.md): 8 clients ping-pong 40-byte requests through a
 * process that runs dist/broker/relay.js (plain TCP in, TLS 1.3 out, verified against a CA from
 * the emulator's local CA) to a TLS server that answers each request with 120 bytes. Prints round
 * trips per second and the relay process's CPU per round trip: the cost of relay.ts and Node's
 * sockets with nothing else of azdb, PostgreSQL or pgbench on the path. Needs `npm run build`.
 *
 * Environment: RELAY_SECONDS=6, RELAY_WORKERS=1 (>1: the relay runs under node:cluster, as
 * `azdb serve --workers N` does), RELAY_NODE_FLAGS="" (the relay process's Node flags),
 * RELAY_MODULE=dist/broker/relay.js (a variant exporting the same `relay`), RELAY_CPU=LIST (pin the
 * relay processes with taskset, e.g. 1; pin this process and the server with `taskset -c 0 node …`).
 */
import cluster from 'node:cluster';
import { fork, execFileSync } from 'node:child_process';
import { readFileSync, mkdtempSync, rmSync } from 'node:fs';
import { connect as tcpConnect, createServer } from 'node:net';
import { connect as tlsConnect, createSecureContext, createServer as createTlsServer } from 'node:tls';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

const SELF = fileURLToPath(import.meta.url);
const role = process.env.RELAY_ROLE ?? 'main';
const listen = (server) => new Promise((done) => server.listen(0, '127.0.0.1', () => done(server.address().port)));

if (role === 'server') {
  const { key, cert } = JSON.parse(process.env.RELAY_TLS);
  const reply = Buffer.alloc(120, 'r');
  const server = createTlsServer({ key, cert }, (socket) => {
    socket.setNoDelay(true);
    socket.on('data', () => socket.write(reply));
    socket.on('error', () => {});
  });
  process.send(await listen(server));
} else if (role === 'relay') {
  if (cluster.isPrimary && process.env.RELAY_CPU) execFileSync('taskset', ['-pc', process.env.RELAY_CPU, String(process.pid)], { stdio: 'ignore' });
  const workers = Number(process.env.RELAY_WORKERS ?? 1);
  if (cluster.isPrimary && workers > 1) {
    const all = Array.from({ length: workers }, () => cluster.fork());
    const ports = await Promise.all(all.map((worker) => new Promise((done) => worker.once('message', done))));
    process.send(ports[0]);
    const cpuUs = (pid) => {
      const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
      const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      return ((Number(fields[11]) + Number(fields[12])) * 1e6) / 100;
    };
    process.on('message', () => process.send({ cpuUs: [process.pid, ...all.map((w) => w.process.pid)].reduce((sum, pid) => sum + cpuUs(pid), 0) }));
  } else {
    const { relay } = await import(pathToFileURL(resolve(process.env.RELAY_MODULE ?? join(SELF, '..', '..', 'dist', 'broker', 'relay.js'))).href);
    const context = createSecureContext({ ca: process.env.RELAY_CA });
    const upstreamPort = Number(process.env.RELAY_UPSTREAM_PORT);
    const server = createServer({ noDelay: true, pauseOnConnect: true }, (client) => {
      const tcp = tcpConnect({ port: upstreamPort, host: '127.0.0.1', noDelay: true }, () => {
        const upstream = tlsConnect({ socket: tcp, secureContext: context, servername: 'relay.bench' }, () => void relay(client, upstream, Buffer.alloc(0)));
      });
    });
    process.send(await listen(server));
    process.on('message', () => {
      const usage = process.cpuUsage();
      process.send({ cpuUs: usage.user + usage.system });
    });
  }
} else {
  const { loadOrCreateCa } = await import('../dist/emulator/ca.js');
  const dir = mkdtempSync(join(tmpdir(), 'azdb-relay-micro-'));
  const ca = await loadOrCreateCa(dir);
  const issued = await ca.issueServerCertificate({ dnsNames: ['relay.bench'], ipAddresses: ['127.0.0.1'] });
  rmSync(dir, { recursive: true, force: true });
  const start = (env, execArgv = []) => {
    const child = fork(SELF, [], { env: { ...process.env, ...env }, execArgv });
    return new Promise((done) => child.once('message', (port) => done({ child, port })));
  };
  const server = await start({ RELAY_ROLE: 'server', RELAY_TLS: JSON.stringify({ key: issued.keyPem, cert: issued.certPem }) });
  const relayFlags = (process.env.RELAY_NODE_FLAGS ?? '').split(/\s+/).filter(Boolean);
  const relayProcess = await start({ RELAY_ROLE: 'relay', RELAY_CA: ca.caPem, RELAY_UPSTREAM_PORT: String(server.port) }, relayFlags);
  const cpu = () => new Promise((done) => {
    relayProcess.child.once('message', (m) => done(m.cpuUs));
    relayProcess.child.send('cpu');
  });
  const request = Buffer.alloc(40, 'q');
  let roundTrips = 0;
  let running = true;
  const clients = await Promise.all(Array.from({ length: 8 }, () => new Promise((done) => {
    const socket = tcpConnect(relayProcess.port, '127.0.0.1', () => done(socket));
    socket.setNoDelay(true);
  })));
  for (const socket of clients) {
    socket.on('data', () => {
      roundTrips += 1;
      if (running) socket.write(request);
    });
    socket.write(request);
  }
  await new Promise((done) => setTimeout(done, 1000)); // warm-up
  const [cpu0, n0, t0] = [await cpu(), roundTrips, Date.now()];
  await new Promise((done) => setTimeout(done, Number(process.env.RELAY_SECONDS ?? 6) * 1000));
  const [cpu1, n1, t1] = [await cpu(), roundTrips, Date.now()];
  running = false;
  console.log(`round trips/s ${Math.round((n1 - n0) / ((t1 - t0) / 1000))}, relay CPU ${((cpu1 - cpu0) / (n1 - n0)).toFixed(2)} µs per round trip`);
  for (const socket of clients) socket.destroy();
  server.child.kill();
  relayProcess.child.kill();
}
