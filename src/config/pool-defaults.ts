/**
 * Defaults of a `pool:` mapping, outside the schema module so that the broker (which reads them
 * at every pool's start) does not load the config parser (valibot) with them.
 */
export const POOL_MODES = ['session', 'transaction'] as const;

/** Defaults of a `pool:` mapping as a file would write them (durations in seconds); README "Pooling" lists them too. */
export const POOL_DEFAULTS = {
  mode: 'session',
  max_server_connections: 10,
  min_idle: 0,
  idle_timeout: 600,
  server_lifetime: 3_600,
  max_client_wait: 30,
  max_prepared_statements: 200,
} as const;
