/**
 * A loopback proxy in front of a real registry where the test decides, request by request,
 * whether to answer itself (an error status, a 401 challenge, a redirect) or to forward the
 * request unchanged. Every request is recorded with all its headers. It covers what the fault
 * proxy in registry.ts does not: a pattern over all requests ("two in three fail"), auth gates
 * whose token realm is elsewhere (token-realm.ts), and seeing which headers reached a mirror or
 * the target of a redirect.
 *
 * @example
 *   const flaky = await startGateProxy({ target: reg.url, gate: (_req, n) => (n % 3 < 2 ? { status: 503 } : undefined) });
 *   … pull from flaky.host …
 *   expect(flaky.requests.every((r) => !r.headers['x-secret'])).toBe(true);
 *   await flaky.stop();
 */
import { createServer, request as httpRequest, type IncomingHttpHeaders, type Server } from 'node:http';
import { freePort } from './registry.ts';

export interface GateRequest {
  method: string;
  /** Path and query. */
  path: string;
  headers: IncomingHttpHeaders;
  /** What the client got: the gate's status, or the registry's. */
  status: number;
}

/** The gate's own answer to a request. */
export interface GateAnswer {
  status: number;
  headers?: Record<string, string>;
  body?: string;
}

/** Decides about request number `n` (0-based, counting every request): answer it, or forward it (undefined). */
export type Gate = (req: GateRequest, n: number) => GateAnswer | undefined;

export interface GateProxy {
  /** `127.0.0.1:<port>` */
  host: string;
  /** `http://127.0.0.1:<port>` */
  url: string;
  requests: GateRequest[];
  stop(): Promise<void>;
}

export async function startGateProxy(opts: { target: string; gate?: Gate }): Promise<GateProxy> {
  const target = new URL(opts.target);
  const requests: GateRequest[] = [];
  const port = await freePort();
  const server: Server = createServer((req, res) => {
    const rec: GateRequest = { method: req.method!, path: req.url!, headers: req.headers, status: 0 };
    const n = requests.push(rec) - 1;
    const answer = opts.gate?.(rec, n);
    if (answer) {
      rec.status = answer.status;
      res.writeHead(answer.status, { 'content-type': 'application/json', ...answer.headers }).end(answer.body ?? '{"errors":[{"code":"GATE"}]}');
      return;
    }
    // The registry behind needs no credentials; what reached the gate is in `requests`.
    const headers = { ...req.headers, host: target.host };
    delete headers.authorization;
    const upstream = httpRequest({ host: target.hostname, port: target.port, method: req.method, path: req.url, headers }, (up) => {
      rec.status = up.statusCode!;
      res.writeHead(up.statusCode!, up.headers);
      up.pipe(res);
    });
    upstream.on('error', () => (res.headersSent ? res.destroy() : res.writeHead(502).end()));
    req.pipe(upstream);
  });
  await new Promise<void>((resolve) => server.listen(port, '127.0.0.1', resolve));
  return {
    host: `127.0.0.1:${port}`,
    url: `http://127.0.0.1:${port}`,
    requests,
    stop: () => closeServer(server),
  };
}

/** Close a test server now, open keep-alive connections included. */
export function closeServer(server: Server): Promise<void> {
  return new Promise<void>((resolve) => {
    server.closeAllConnections();
    server.close(() => resolve());
  });
}
