/**
 * The azdb side of `npm run bench`: one PostgreSQL tunnel (dist/broker/tunnel.js) in its own
 * process, so the bench can read this process's CPU time and RSS from /proc. The parent forks it
 * with an IPC channel and sends the upstream and the token; the token reaches the tunnel only
 * through a TokenCache (as in `azdb proxy db`), warmed once before the listener opens, so every
 * token fetch counted after `ready` happened on a client's connection path.
 *
 * With `pool` (a `pool:` mapping as the config check returns it) the tunnel pools its server
 * connections, as a database with `pool:` in azdb.yaml does.
 *
 * Messages from the parent: {type:'start', ...}, {type:'stats'}, {type:'heap', file}, {type:'gc'}, {type:'stop'}.
 */
import { openTunnel } from '../dist/broker/tunnel.js';
import { TokenCache } from '../dist/azure/token-cache.js';
import { CLOUDS, databaseScope } from '../dist/azure/clouds.js';
import { getHeapSpaceStatistics, setFlagsFromString, writeHeapSnapshot } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { NO_AUDIT, createFileAuditSink } from '../dist/broker/audit.js';
import { poolLimits } from '../dist/broker/pool/pool-limits.js';

if (!process.send) {
  console.error('bench/azdb-child.mjs is started by bench/run.mjs (it needs an IPC channel)');
  process.exit(2);
}

let tunnel;
let tokens;
let audit = NO_AUDIT;
let fetchesBeforeReady = 0;
let getTokenCalls = 0;
const scope = databaseScope(CLOUDS.AzureCloud);

process.on('message', (message) => {
  handle(message).catch((error) => {
    process.send({ type: 'error', message: error instanceof Error ? error.stack ?? error.message : String(error) });
  });
});
process.on('disconnect', () => process.exit(0));

async function handle(message) {
  switch (message.type) {
    case 'start': {
      const { token, expiresOnTimestamp } = message;
      // The credential is what DefaultAzureCredential would be: called only by the cache.
      const credential = { getToken: async () => ({ token, expiresOnTimestamp }) };
      tokens = new TokenCache({ credential });
      await tokens.getToken(scope); // like startTunnel: fail early, before any client
      fetchesBeforeReady = tokens.stats.fetches;
      if (message.audit !== 'off') audit = createFileAuditSink(message.auditFile, { queries: message.audit === 'queries' });
      tunnel = await openTunnel({
        target: {
          name: 'bench',
          protocol: message.protocol,
          host: message.host,
          port: message.port,
          tls: { mode: 'verify-full', ca: message.caPem, caSource: 'the bench CA', serverName: message.serverName },
          serverKind: 'flexible',
        },
        host: '127.0.0.1',
        port: 0,
        dbUser: message.dbUser,
        dbName: message.dbName,
        authorize: () => ({ allowed: true }),
        getToken: () => {
          getTokenCalls += 1;
          return tokens.getToken(scope);
        },
        audit,
        ...(message.pool ? { pool: poolLimits(message.pool) } : {}),
      });
      process.send({ type: 'ready', port: tunnel.port, password: tunnel.password, poolLimits: tunnel.pool?.limits });
      break;
    }
    case 'stats':
      process.send({
        type: 'stats',
        connections: tunnel?.connections ?? 0,
        getTokenCalls,
        fetchesOnConnectionPath: (tokens?.stats.fetches ?? 0) - fetchesBeforeReady,
        cacheHits: tokens?.stats.cacheHits ?? 0,
        memory: process.memoryUsage(),
        // Counters only (the identity is `oid:…@tenant`, never a token).
        pool: tunnel?.pool?.stats().map((s) => ({ ...s.info, clientsActive: s.clientsActive, clientsWaiting: s.clientsWaiting, serversActive: s.serversActive, serversIdle: s.serversIdle, serversOpening: s.serversOpening, logins: s.logins })),
      });
      break;
    case 'gc': {
      // A full GC on request, without running the whole child with --expose-gc.
      // With each V8 heap space's size and use before and after, to tell which space keeps pages spare.
      const spacesBefore = heapSpaces();
      setFlagsFromString('--expose-gc');
      runInNewContext('gc')();
      process.send({ type: 'gc', memory: process.memoryUsage(), spacesBefore, spaces: heapSpaces() });
      break;
    }
    case 'heap':
      process.send({ type: 'heap', file: writeHeapSnapshot(message.file) });
      break;
    case 'stop':
      await tunnel?.close(0);
      await audit.close();
      process.send({ type: 'stopped' }, () => process.exit(0)); // a normal exit writes --cpu-prof
      break;
  }
}

/** Each V8 heap space's size (committed) and use, in KiB. */
function heapSpaces() {
  return Object.fromEntries(getHeapSpaceStatistics().map((s) => [s.space_name.replace(/_space$/, ''), { sizeKiB: Math.round(s.space_size / 1024), usedKiB: Math.round(s.space_used_size / 1024) }]));
}
