/**
 * The parts of undici that berth's HTTP clients use (the registry client, its token servers, the
 * notify webhook, http health checks), loaded without undici's index. The index also loads fetch, WebSocket,
 * EventSource, the caches and the mocks: 28 MiB more resident in a node that requires it, against
 * 16 MiB for these modules (Node 24, RSS after require, 2026-12-02). A daemon keeps whatever its
 * first pull loaded for as long as it runs, and a pull's peak memory counts it too.
 *
 * The paths are undici's own files (the lock pins its version); the registry, auth and notify
 * tests and the http health check's tests use every one of them against real servers.
 */
import { createRequire } from 'node:module';
import type * as Undici from 'undici';

const require = createRequire(import.meta.url);

export const Agent: typeof Undici.Agent = require('undici/lib/dispatcher/agent.js');
export const Client: typeof Undici.Client = require('undici/lib/dispatcher/client.js');
export const redirectInterceptor: typeof Undici.interceptors.redirect = require('undici/lib/interceptor/redirect.js');
const apiRequest: (
  this: Undici.Dispatcher,
  opts: Undici.Dispatcher.RequestOptions,
) => Promise<Undici.Dispatcher.ResponseData> = require('undici/lib/api/api-request.js');

export type RequestOptions = Omit<Undici.Dispatcher.RequestOptions, 'origin' | 'path' | 'method'> & {
  method?: Undici.Dispatcher.HttpMethod;
  dispatcher: Undici.Dispatcher;
};

/** undici's `request(url, options)`, always through the given dispatcher (never a global one). */
export function request(url: string | URL, opts: RequestOptions): Promise<Undici.Dispatcher.ResponseData> {
  const u = typeof url === 'string' ? new URL(url) : url;
  const { dispatcher, ...rest } = opts;
  return apiRequest.call(dispatcher, { ...rest, origin: u.origin, path: u.pathname + u.search, method: rest.method ?? 'GET' });
}
