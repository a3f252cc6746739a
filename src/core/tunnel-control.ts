/**
 * How `azdb db logout` in another shell closes exactly the tunnels it names, and nothing else:
 * every azdb process that holds tunnels listens on a Unix socket of its own in
 * `<state>/tunnels/<pid>.sock` (0600: only the same user), lists each tunnel in a record beside it,
 * and closes the tunnels a request names. The process itself (a picker, a demo, other tunnels)
 * carries on.
 *
 * The protocol is one JSON line each way: `{"close": NAME | null}` (null: every tunnel), answered
 * with `{"closed": [{"name","host","port"}]}` once they are closed.
 */
import { chmod, mkdir, rm } from 'node:fs/promises';
import { connect, createServer, type Server, type Socket } from 'node:net';
import { join } from 'node:path';
import { ExternalError } from '../errors.js';
import { writeTunnelRecord } from './tunnel-records.js';

export interface HeldTunnel {
  name: string;
  host: string;
  port: number;
  /** Closes the tunnel (and, for a process that exists for it, lets that process end). */
  close(): Promise<void>;
}

export interface ClosedTunnel {
  name: string;
  host: string;
  port: number;
}

interface Control {
  server: Server;
  socketPath: string;
  held: Set<HeldTunnel>;
}

/** A request must arrive whole and small; anything else is not azdb's. */
const MAX_REQUEST_BYTES = 4096;
const REPLY_TIMEOUT_MS = 30_000;

const controls = new Map<string, Promise<Control>>();

function controlSocketPath(stateDir: string, pid: number): string {
  return join(stateDir, 'tunnels', `${pid}.sock`);
}

/**
 * Lists `tunnel` for `azdb db logout` until the returned release is called (the tunnel closed by
 * its holder). The first tunnel of a state folder starts this process's control socket; the last
 * release stops it.
 */
export async function holdTunnel(stateDir: string, tunnel: HeldTunnel): Promise<() => Promise<void>> {
  const pending = controls.get(stateDir) ?? startControl(stateDir);
  controls.set(stateDir, pending);
  const control = await pending.catch(() => undefined);
  if (!control) {
    // No control socket (a path too long for a Unix socket, a read-only folder): the tunnel
    // still works; `azdb db logout` lists it and says it cannot reach it.
    controls.delete(stateDir);
    return writeTunnelRecord(stateDir, { pid: process.pid, name: tunnel.name, host: tunnel.host, port: tunnel.port, started: new Date().toISOString() });
  }
  control.held.add(tunnel);
  const removeRecord = await writeTunnelRecord(stateDir, {
    pid: process.pid,
    name: tunnel.name,
    host: tunnel.host,
    port: tunnel.port,
    started: new Date().toISOString(),
    control: control.socketPath,
  });
  let released = false;
  return async () => {
    if (released) return;
    released = true;
    control.held.delete(tunnel);
    await removeRecord();
    if (control.held.size === 0 && controls.get(stateDir) === pending) {
      controls.delete(stateDir);
      // Not awaited: the request that closed the last tunnel is still being answered.
      control.server.close();
      await rm(control.socketPath, { force: true });
    }
  };
}

async function startControl(stateDir: string): Promise<Control> {
  const socketPath = controlSocketPath(stateDir, process.pid);
  await mkdir(join(stateDir, 'tunnels'), { recursive: true, mode: 0o700 });
  await rm(socketPath, { force: true }); // left by an earlier process with this pid
  const held = new Set<HeldTunnel>();
  const server = createServer((socket) => serveRequest(socket, held));
  server.on('error', () => {});
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(socketPath, () => {
      server.off('error', reject);
      resolve();
    });
  });
  await chmod(socketPath, 0o600);
  server.unref(); // the tunnels keep the process alive, not their control socket
  return { server, socketPath, held };
}

function serveRequest(socket: Socket, held: Set<HeldTunnel>): void {
  let text = '';
  socket.setEncoding('utf8');
  socket.on('error', () => {});
  socket.on('data', (chunk: string) => {
    text += chunk;
    if (text.length > MAX_REQUEST_BYTES) {
      socket.destroy();
      return;
    }
    const end = text.indexOf('\n');
    if (end < 0) return;
    socket.removeAllListeners('data');
    void answer(text.slice(0, end), held).then(
      (reply) => socket.end(`${JSON.stringify(reply)}\n`),
      () => socket.destroy(),
    );
  });
}

async function answer(line: string, held: Set<HeldTunnel>): Promise<{ closed: ClosedTunnel[] }> {
  const request = JSON.parse(line) as { close?: unknown };
  const name = typeof request.close === 'string' ? request.close : undefined;
  const matching = [...held].filter((tunnel) => name === undefined || tunnel.name === name);
  await Promise.all(matching.map((tunnel) => tunnel.close()));
  return { closed: matching.map(({ name: n, host, port }) => ({ name: n, host, port })) };
}

/** Asks the process listening on `socketPath` to close its tunnels to `name` (all when undefined). */
export async function requestClose(socketPath: string, name: string | undefined): Promise<ClosedTunnel[]> {
  return new Promise<ClosedTunnel[]>((resolve, reject) => {
    const socket = connect(socketPath);
    let text = '';
    const fail = (reason: string) => {
      socket.destroy();
      reject(new ExternalError(`the azdb process behind ${socketPath} did not answer: ${reason}`));
    };
    const timer = setTimeout(() => fail(`no answer within ${REPLY_TIMEOUT_MS / 1000} s`), REPLY_TIMEOUT_MS);
    socket.setEncoding('utf8');
    socket.on('connect', () => socket.write(`${JSON.stringify({ close: name ?? null })}\n`));
    socket.on('data', (chunk: string) => (text += chunk));
    socket.on('error', (error) => {
      clearTimeout(timer);
      fail(error.message);
    });
    socket.on('end', () => {
      clearTimeout(timer);
      try {
        resolve((JSON.parse(text) as { closed: ClosedTunnel[] }).closed);
      } catch {
        fail('an answer that is not azdb\'s');
      }
    });
  });
}
