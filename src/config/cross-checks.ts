/**
 * Rules between entries, which the schema of one entry cannot see: a name used twice, and a name
 * referred to (broker.roles → roles, a listener → databases, two listeners → one endpoint). They
 * read the data as written, so that they still run when other keys have errors; an entry takes
 * part where the keys the rule needs are valid.
 */
import * as v from 'valibot';
import { isMapping, type Path } from './data.js';
import type { Issues } from './issues.js';
import { clip, didYouMean } from './messages.js';
import { DatabaseNameSchema, ListenerEndpointSchema, RoleNameSchema, type AzdbConfig } from './schema.js';
import { MAX_LIST_ENTRIES } from './schema-parts.js';

/** The valid names in a list of entries; `all` when every entry has one, so that any other name is surely undefined. */
interface Names {
  list: string;
  at: Path;
  entries: { index: number; name: string }[];
  all: boolean;
}

export function checkBetweenEntries(data: unknown, issues: Issues): void {
  if (!isMapping(data)) return;
  const databases = namesIn(data, 'databases', ['name'], DatabaseNameSchema);
  const roles = namesIn(data, 'roles', ['metadata', 'name'], RoleNameSchema);
  checkUnique(issues, databases, 'database');
  checkUnique(issues, roles, 'role');
  const broker = data['broker'];
  checkBrokerRoles(issues, field(broker, 'roles'), roles);
  const discovery = data['discovery'];
  checkListeners(issues, field(broker, 'listeners'), databases, Array.isArray(discovery) && discovery.length > 0);
  checkMySqlEntraTls(issues, field(broker, 'listeners'), data['databases']);
}

/** MySQL clients send an Entra token as a clear-text password, which azdb takes only over TLS: on loopback too. */
function checkMySqlEntraTls(issues: Issues, listeners: unknown, databases: unknown): void {
  if (!Array.isArray(listeners) || listeners.length > MAX_LIST_ENTRIES || !Array.isArray(databases)) return;
  listeners.forEach((listener: unknown, index) => {
    if (field(listener, 'client_auth') !== 'entra') return;
    const db = databases.find((d: unknown) => field(d, 'name') === field(listener, 'database'));
    const problem = entraTlsProblem(field(db, 'protocol'), field(listener, 'cert_file') !== undefined);
    if (problem) issues.error(['broker', 'listeners', index, 'client_auth'], problem);
  });
}

/** Why a `client_auth: entra` listener cannot take tokens without a certificate, if it cannot. */
export function entraTlsProblem(protocol: unknown, hasCertificate: boolean): string | undefined {
  if (protocol !== 'mysql' || hasCertificate) return undefined;
  return 'client_auth: entra on a mysql database needs cert_file/key_file: MySQL clients send the token as a clear-text password, which azdb takes only over TLS';
}

/** `database "x" uses tls.mode insecure`, for a config that is otherwise fine. */
export function warnInsecureTls(config: Pick<AzdbConfig, 'databases'>, issues: Issues): void {
  config.databases.forEach((db, index) => {
    if (db.tls.mode !== 'insecure') return;
    issues.warn(
      ['databases', index, 'tls', 'mode'],
      `database "${db.name}" uses tls.mode insecure: the server certificate is not verified; use it only for the demo`,
    );
  });
}

function namesIn(data: Record<string, unknown>, list: string, at: Path, schema: v.GenericSchema<unknown, string>): Names {
  const items = data[list];
  if (items === undefined || items === null) return { list, at, entries: [], all: true };
  if (!Array.isArray(items) || items.length > MAX_LIST_ENTRIES) return { list, at, entries: [], all: false };
  const entries: Names['entries'] = [];
  items.forEach((item: unknown, index) => {
    const name = valid(schema, at.reduce(field, item));
    if (name !== undefined) entries.push({ index, name });
  });
  return { list, at, entries, all: entries.length === items.length };
}

/** Reports the second and later entries with an already used name, naming the first one's line. */
function checkUnique(issues: Issues, names: Names, what: string): void {
  const first = new Map<string, number>();
  for (const { index, name } of names.entries) {
    const path = [names.list, index, ...names.at];
    const line = first.get(name);
    if (line === undefined) first.set(name, issues.position(path).line);
    else issues.error(path, `duplicate ${what} name "${clip(name)}" (first defined at line ${line})`);
  }
}

function checkBrokerRoles(issues: Issues, roles: unknown, defined: Names): void {
  // When some role's name is unknown, "not defined" would only be noise.
  if (!Array.isArray(roles) || !defined.all) return;
  const known = distinct(defined);
  roles.forEach((role: unknown, index) => {
    const name = valid(RoleNameSchema, role);
    if (name === undefined || known.includes(name)) return;
    const listed = known.length === 0 ? 'no roles are defined' : `defined: ${listOf(known)}`;
    issues.error(
      ['broker', 'roles', index],
      `role "${clip(name)}" is not defined under roles${didYouMean(name, known)} (${listed})`,
    );
  });
}

function checkListeners(issues: Issues, listeners: unknown, databases: Names, discovery: boolean): void {
  if (!Array.isArray(listeners) || listeners.length > MAX_LIST_ENTRIES) return;
  const known = distinct(databases);
  const endpoints = new Map<string, number>();
  listeners.forEach((listener: unknown, index) => {
    const path = ['broker', 'listeners', index];
    const database = valid(ListenerEndpointSchema.entries.database, field(listener, 'database'));
    if (database !== undefined && databases.all && !known.includes(database)) {
      const message = `database "${clip(database)}" is not defined under databases${didYouMean(database, known)}`;
      // A discovered database has no static entry; it can only be checked once discovery runs.
      if (discovery) {
        issues.warn([...path, 'database'], `${message}; it must be found by discovery`);
      } else {
        const listed = known.length === 0 ? 'none are defined' : `defined: ${listOf(known)}`;
        issues.error([...path, 'database'], `${message} (${listed})`);
      }
    }
    const endpoint = valid(ListenerEndpointSchema, listener);
    if (endpoint === undefined) return;
    const address = `${endpoint.host}:${endpoint.port}`;
    const line = endpoints.get(address);
    if (line === undefined) endpoints.set(address, issues.position(path).line);
    else issues.error(path, `${address} is already used by the listener at line ${line}`);
  });
}

function field(value: unknown, key: string | number): unknown {
  return isMapping(value) ? value[key] : undefined;
}

function valid<T>(schema: v.GenericSchema<unknown, T>, value: unknown): T | undefined {
  const result = v.safeParse(schema, value);
  return result.success ? result.output : undefined;
}

function distinct(names: Names): string[] {
  return [...new Set(names.entries.map((entry) => entry.name))];
}

function listOf(all: string[], max = 10): string {
  return all.length <= max ? all.join(', ') : `${all.slice(0, max).join(', ')}, … (${all.length} in all)`;
}
