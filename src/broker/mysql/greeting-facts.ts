/**
 * What azdb greets a MySQL client with before any server connection exists: the server's greeting
 * facts (version, capabilities, MariaDB's extended capabilities, charset, status, auth plugin) as
 * learned from the last connection to the same server, per process. Greeting first and connecting
 * only after the client proved the tunnel password keeps silent sockets and wrong passwords away
 * from the server, whose `max_connect_errors` would otherwise block the broker's host for everyone.
 *
 * A server not seen yet by this process is probed once: a connection that reads the greeting and
 * closes (one aborted connect on the server), shared by every session that waits for it.
 */
import type { UpstreamTarget } from '../target.js';
import type { HandshakeV10 } from './codec/handshake.js';
import { connectUpstream } from './upstream.js';
import { serverKey } from './connection-ids.js';

/** A server's greeting without what belongs to one connection (its thread id and scramble). */
export type GreetingFacts = Omit<HandshakeV10, 'connectionId' | 'authPluginData'>;

const learned = new Map<string, GreetingFacts>();
const probes = new Map<string, Promise<GreetingFacts | undefined>>();


/** Remembers what a server greeted with, for the next client of the same server. */
export function learnGreeting(target: Pick<UpstreamTarget, 'host' | 'port'>, greeting: HandshakeV10): void {
  const { connectionId: _id, authPluginData: _scramble, ...facts } = greeting;
  learned.set(serverKey(target), facts);
}

/**
 * The facts to greet a client of `target` with: learned ones, else those of a probe (one at a
 * time per server); undefined when the server could not be reached or refused (its ERR greeting).
 */
export async function greetingFacts(target: UpstreamTarget, signal?: AbortSignal): Promise<GreetingFacts | undefined> {
  const key = serverKey(target);
  const known = learned.get(key);
  if (known) return known;
  let probe = probes.get(key);
  if (!probe) {
    probe = probeGreeting(target, signal).finally(() => probes.delete(key));
    probes.set(key, probe);
  }
  return probe;
}

async function probeGreeting(target: UpstreamTarget, signal?: AbortSignal): Promise<GreetingFacts | undefined> {
  try {
    const connection = await connectUpstream(target, signal);
    connection.leg.reader.detach();
    // A FIN, not a reset: the server sees a client that left before logging in.
    connection.tcp.end();
    learnGreeting(target, connection.greeting);
    return learned.get(serverKey(target));
  } catch {
    // The session connects again after the client's login and reports the failure then.
    return undefined;
  }
}

/** For tests: forget what was learned, as a new process would. */
export function forgetGreetings(): void {
  learned.clear();
}
