/**
 * The HTTP side of `azdb serve` (`broker.http.address`), on node:http:
 * - `GET /healthz`: 200 while the process runs (liveness);
 * - `GET /readyz`: 200 when the broker can serve, else 503; both with a JSON body saying why;
 * - `GET /metrics`: the metrics exposition, in the content type it comes with;
 * - `GET /pools`: the listeners' connection pools as JSON (`azdb pools` reads it).
 * Nothing else; no request body is read. Bodies never hold a token or a password.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';

export interface Readiness {
  ready: boolean;
  /** Why not ready, for people: the first failing check. */
  reason?: string;
  checks: Record<string, unknown>;
}

export interface MetricsExposition {
  contentType: string;
  body: string;
}

export interface HealthServerOptions {
  host: string;
  port: number;
  readiness(): Promise<Readiness>;
  metrics(): Promise<MetricsExposition>;
  /** The body of /pools (or a promise of it: `azdb serve --workers N` asks its workers); absent: 404. */
  pools?(): unknown;
  onError?: (error: Error) => void;
}

export interface HealthServer {
  host: string;
  port: number;
  close(): Promise<void>;
}

export async function startHealthServer(options: HealthServerOptions): Promise<HealthServer> {
  const server: Server = createServer((request, response) => {
    handle(options, request, response).catch((error: unknown) => {
      options.onError?.(error instanceof Error ? error : new Error(String(error)));
      if (!response.headersSent) send(response, 500, 'application/json', JSON.stringify({ error: 'internal error' }));
      else response.destroy();
    });
  });
  // Probes and scrapers open short connections; none should hold the shutdown.
  server.keepAliveTimeout = 5_000;
  server.headersTimeout = 10_000;
  server.requestTimeout = 10_000;
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.port, options.host, () => {
      server.off('error', reject);
      server.on('error', (error) => options.onError?.(error));
      resolve();
    });
  });
  const address = server.address() as AddressInfo;
  return {
    host: address.address,
    port: address.port,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}

async function handle(options: HealthServerOptions, request: IncomingMessage, response: ServerResponse): Promise<void> {
  const path = (request.url ?? '/').split('?', 1)[0];
  if (request.method !== 'GET' && request.method !== 'HEAD') {
    response.setHeader('Allow', 'GET, HEAD');
    send(response, 405, 'application/json', JSON.stringify({ error: 'method not allowed' }));
    return;
  }
  switch (path) {
    case '/healthz':
      send(response, 200, 'application/json', JSON.stringify({ status: 'ok' }));
      return;
    case '/readyz': {
      const readiness = await options.readiness();
      send(response, readiness.ready ? 200 : 503, 'application/json', JSON.stringify(readiness));
      return;
    }
    case '/metrics': {
      const { contentType, body } = await options.metrics();
      send(response, 200, contentType, body);
      return;
    }
    case '/pools':
      if (options.pools) {
        send(response, 200, 'application/json', JSON.stringify(await options.pools()));
        return;
      }
      send(response, 404, 'application/json', JSON.stringify({ error: 'not found', paths: ['/healthz', '/readyz', '/metrics'] }));
      return;
    default:
      send(response, 404, 'application/json', JSON.stringify({ error: 'not found', paths: ['/healthz', '/readyz', '/metrics', ...(options.pools ? ['/pools'] : [])] }));
  }
}

function send(response: ServerResponse, status: number, type: string, body: string): void {
  response.writeHead(status, { 'Content-Type': type, 'Cache-Control': 'no-store', 'Content-Length': Buffer.byteLength(body) });
  response.end(response.req.method === 'HEAD' ? undefined : body);
}
