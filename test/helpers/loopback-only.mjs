// Preloaded (`node --import`) into CLI child processes by tests that must prove nothing leaves
// 127.0.0.1: every socket connect to another host fails at once, before any DNS lookup, with a
// message naming the host, and is appended to $AZDB_TEST_BLOCKED_LOG for the test to assert on.
import net from 'node:net';
import { appendFileSync } from 'node:fs';

const LOOPBACK = new Set(['127.0.0.1', '::1', 'localhost', '::ffff:127.0.0.1']);
const original = net.Socket.prototype.connect;

function target(args) {
  const first = Array.isArray(args[0]) ? args[0][0] : args[0];
  if (first !== null && typeof first === 'object') return { host: first.host, port: first.port, path: first.path };
  if (typeof first === 'number' || (typeof first === 'string' && /^\d+$/.test(first))) {
    return { host: typeof args[1] === 'string' ? args[1] : undefined, port: first };
  }
  return { path: first };
}

net.Socket.prototype.connect = function connect(...args) {
  const { host, port, path } = target(args);
  if (path == null && host != null && !LOOPBACK.has(String(host).toLowerCase())) {
    const line = `${host}:${port}`;
    if (process.env.AZDB_TEST_BLOCKED_LOG) appendFileSync(process.env.AZDB_TEST_BLOCKED_LOG, `${line}\n`);
    const error = Object.assign(new Error(`blocked by the test: a connection to ${line} would leave 127.0.0.1`), { code: 'ECONNREFUSED' });
    process.nextTick(() => this.destroy(error));
    return this;
  }
  return original.apply(this, args);
};
