/**
 * The ParameterStatus set a transaction-mode client is greeted with, remembered per pool key and
 * client settings (as PgBouncer greets from the values its server connections last reported), so
 * that a login does not wait for a server connection when every one of a busy key is lent out.
 *
 * An entry is what a connection of the key reported right after the client's startup parameters
 * were applied on it without error: a client with the same parameters is greeted from it without
 * borrowing one. application_name is the exception, as clients often vary only that: its value is
 * not part of the entry's name (only whether the client gave one), and the client's own value is
 * put in its place — when it is one the server reports unchanged (printable ASCII, at most 63
 * bytes); any other value, and any other new combination of parameters, borrows a connection once,
 * so that the server judges them at login as without the cache. Pure: maps in, maps out.
 */

const APPLICATION_NAME = 'application_name';
/** What the server keeps of application_name unchanged: NAMEDATALEN - 1 bytes of printable ASCII. */
const REPORTED_AS_SENT = /^[\x20-\x7e]{0,63}$/;
/** Entries kept over all keys; the oldest go first (a few per key and client program in practice). */
const DEFAULT_MAX_ENTRIES = 256;

/** How a client's startup parameters name a cache entry, and its application_name, when they can. */
export interface GreetingSignature {
  readonly name: string;
  readonly applicationName: string | undefined;
}

/** undefined: the client's application_name may come back changed, so the server must greet it. */
export function greetingSignature(settings: Readonly<Record<string, string>>): GreetingSignature | undefined {
  let applicationName: string | undefined;
  const rest: string[] = [];
  for (const [name, value] of Object.entries(settings)) {
    const lower = name.toLowerCase();
    if (lower === APPLICATION_NAME) applicationName = value;
    else rest.push(`${lower}=${value}`);
  }
  if (applicationName !== undefined && !REPORTED_AS_SENT.test(applicationName)) return undefined;
  rest.sort();
  return { name: JSON.stringify([applicationName !== undefined, ...rest]), applicationName };
}

export class GreetingCache {
  private readonly entries = new Map<string, ReadonlyMap<string, string>>();

  constructor(private readonly maxEntries = DEFAULT_MAX_ENTRIES) {}

  /** The greeting of a client of `key` with these settings, or undefined when none is known. */
  lookup(key: string, signature: GreetingSignature): Map<string, string> | undefined {
    const known = this.entries.get(entryName(key, signature));
    if (!known) return undefined;
    const parameters = new Map(known);
    if (signature.applicationName !== undefined && parameters.has(APPLICATION_NAME)) parameters.set(APPLICATION_NAME, signature.applicationName);
    return parameters;
  }

  has(key: string, signature: GreetingSignature): boolean {
    return this.entries.has(entryName(key, signature));
  }

  /** What a connection of `key` reported with the client's settings applied (copied). */
  remember(key: string, signature: GreetingSignature, parameters: ReadonlyMap<string, string>): void {
    const name = entryName(key, signature);
    this.entries.delete(name);
    this.entries.set(name, new Map(parameters));
    if (this.entries.size > this.maxEntries) this.entries.delete(this.entries.keys().next().value!);
  }
}

function entryName(key: string, signature: GreetingSignature): string {
  return `${key}\0${signature.name}`;
}
