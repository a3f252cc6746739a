#!/usr/bin/env node
/**
 * The bench's `node` path: the least a Node relay can do on azdb's data path, with none of azdb's
 * code. Plain TCP from the client, TLS verify-full to the server (one shared SecureContext), then
 * `pipe()` both ways. The client logs in through it with the server's own authentication (the
 * token as password); nothing is parsed after the login, audited or pooled.
 *
 * - postgres: SSLRequest, TLS, then pipe from the client's first byte.
 * - mysql: the server's greeting is passed on without CLIENT_SSL; the client's HandshakeResponse
 *   is held while TLS starts with an SSLRequest made of its first 32 bytes, then sent; until the
 *   server's OK or ERR the login's packets are renumbered (the SSLRequest took a sequence number
 *   the client never saw), then pipe.
 *
 * What it costs per query and per idle session is the floor any Node relay with Node's TLS pays
 * on this machine, so `azdb / node` in the bench says how much azdb adds on top of Node and
 * `node / peer` how far Node itself is from PgBouncer or HAProxy (docs/performance.md, "The Node
 * floor").
 *
 *   node bench/node-floor-relay.mjs postgres|mysql LISTEN_PORT UPSTREAM_PORT SERVER_NAME CA_FILE
 * listens on 127.0.0.1:LISTEN_PORT; the upstream is 127.0.0.1:UPSTREAM_PORT.
 */
import { connect as tcpConnect, createServer } from 'node:net';
import { connect as tlsConnect, createSecureContext } from 'node:tls';
import { readFileSync } from 'node:fs';

const [protocol, listenPort, upstreamPort, serverName, caFile] = process.argv.slice(2);
const secureContext = createSecureContext({ ca: readFileSync(caFile, 'utf8'), minVersion: 'TLSv1.2' });
const PG_SSL_REQUEST = Buffer.from([0, 0, 0, 8, 0x04, 0xd2, 0x16, 0x2f]);
const CLIENT_SSL = 0x800;

function startTls(raw, onReady, fail) {
  raw.pause();
  const upstream = tlsConnect({ socket: raw, servername: serverName, secureContext, rejectUnauthorized: true });
  fail.upstream = upstream;
  upstream.on('error', fail);
  upstream.once('close', fail);
  upstream.once('secureConnect', () => {
    upstream.setNoDelay(true);
    onReady(upstream);
  });
  return upstream;
}

function pipeBoth(client, upstream) {
  client.pipe(upstream);
  upstream.pipe(client);
  client.resume();
}

/**
 * Calls onPacket(packet) for each whole MySQL packet read from `socket` until it returns false;
 * then pauses the socket, puts back what it read past that packet and calls onStop.
 */
function readPackets(socket, onPacket, onStop = () => {}) {
  let pending = Buffer.alloc(0);
  const onData = (chunk) => {
    pending = Buffer.concat([pending, chunk]);
    while (pending.length >= 4) {
      const size = 4 + pending.readUIntLE(0, 3);
      if (pending.length < size) return;
      const packet = pending.subarray(0, size);
      pending = pending.subarray(size);
      if (onPacket(packet) === false) {
        socket.off('data', onData);
        socket.pause();
        if (pending.length > 0) socket.unshift(pending);
        onStop();
        return;
      }
    }
  };
  socket.on('data', onData);
}

function postgresSession(client, raw, fail) {
  raw.once('connect', () => raw.write(PG_SSL_REQUEST));
  raw.once('data', (answer) => {
    if (answer.length !== 1 || answer[0] !== 0x53) return fail();
    startTls(raw, (upstream) => pipeBoth(client, upstream), fail);
  });
}

function mysqlSession(client, raw, fail) {
  readPackets(raw, (greeting) => {
    // Greeting: header(4) protocol(1) version NUL, connection id(4), scramble(8), filler(1), caps low(2), ...
    const capsAt = greeting.indexOf(0, 5) + 1 + 4 + 8 + 1;
    const toClient = Buffer.from(greeting);
    toClient.writeUInt16LE(toClient.readUInt16LE(capsAt) & ~CLIENT_SSL, capsAt);
    client.write(toClient);
    readPackets(client, (response) => {
      // The SSLRequest is the first 32 bytes of the client's HandshakeResponse (its capabilities,
      // MariaDB's extended ones included) with CLIENT_SSL, as a TLS client sends it.
      const handshake = Buffer.from(response);
      handshake.writeUInt32LE((handshake.readUInt32LE(4) | CLIENT_SSL) >>> 0, 4);
      const sslRequest = Buffer.concat([Buffer.from([32, 0, 0, 1]), handshake.subarray(4, 36)]);
      raw.write(sslRequest);
      handshake[3] = 2;
      startTls(raw, (upstream) => {
        upstream.write(handshake);
        renumberLogin(client, upstream);
      }, fail);
      return false;
    });
    client.resume();
    return false;
  });
}

/** Until the server's OK or ERR: the client's packets one number up, the server's one down. */
function renumberLogin(client, upstream) {
  const fromClient = (chunk) => {
    // After the HandshakeResponse the login has at most an auth-switch answer: one packet a chunk.
    const out = Buffer.from(chunk);
    out[3] += 1;
    upstream.write(out);
  };
  client.on('data', fromClient);
  client.resume();
  readPackets(
    upstream,
    (packet) => {
      const out = Buffer.from(packet);
      out[3] -= 1;
      client.write(out);
      return out[4] !== 0x00 && out[4] !== 0xff;
    },
    () => {
      // The login is over: the client speaks next, so nothing of it is in flight here.
      client.off('data', fromClient);
      client.pause();
      pipeBoth(client, upstream);
    },
  );
}

const server = createServer({ noDelay: true, pauseOnConnect: true }, (client) => {
  const raw = tcpConnect({ host: '127.0.0.1', port: Number(upstreamPort), noDelay: true });
  // Either side's end or error ends all of it, during the login too (fail.upstream once TLS starts).
  const fail = () => {
    client.destroy();
    raw.destroy();
    fail.upstream?.destroy();
  };
  client.on('error', fail);
  client.once('close', fail);
  raw.on('error', fail);
  raw.once('close', fail);
  if (protocol === 'mysql') mysqlSession(client, raw, fail);
  else postgresSession(client, raw, fail);
});
server.listen(Number(listenPort), '127.0.0.1');
process.on('SIGTERM', () => process.exit(0));
