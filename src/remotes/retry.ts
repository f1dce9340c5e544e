/** Retry policy for registry requests: what is worth retrying, and how long to wait. */
import { setTimeout as sleep } from 'node:timers/promises';

/** HTTP statuses that are worth another try (containerd retries 408/429 always, 5xx too). */
export function retryableStatus(status: number): boolean {
  return status === 408 || status === 429 || (status >= 500 && status <= 599 && status !== 501 && status !== 505);
}

const RETRYABLE_CODES = new Set([
  'ECONNRESET', 'ECONNREFUSED', 'ECONNABORTED', 'EPIPE', 'ETIMEDOUT', 'EHOSTUNREACH', 'ENETUNREACH', 'ENETDOWN', 'EAI_AGAIN', 'ENOTFOUND',
  'UND_ERR_SOCKET', 'UND_ERR_CONNECT_TIMEOUT', 'UND_ERR_HEADERS_TIMEOUT', 'UND_ERR_BODY_TIMEOUT', 'UND_ERR_CLOSED',
  'UND_ERR_REQ_CONTENT_LENGTH_MISMATCH', 'UND_ERR_RES_CONTENT_LENGTH_MISMATCH', 'ERR_STREAM_PREMATURE_CLOSE',
]);

/** A network-level failure (connection refused or reset, timeout, stream cut) worth retrying. */
export function retryableError(err: unknown): boolean {
  let e: any = err;
  for (let depth = 0; e && depth < 4; depth++, e = e.cause) {
    if (typeof e.code === 'string' && RETRYABLE_CODES.has(e.code)) return true;
    if (e.name === 'SocketError' || e.message === 'terminated' || e.message === 'other side closed') return true;
  }
  return false;
}

/** The wait a `Retry-After` header asks for (seconds or an HTTP date), capped; undefined if absent. */
export function retryAfterMs(value: string | string[] | undefined, capMs = 60_000): number | undefined {
  const v = Array.isArray(value) ? value[0] : value;
  if (!v) return undefined;
  const secs = Number(v);
  if (Number.isFinite(secs) && secs >= 0) return Math.min(secs * 1000, capMs);
  const at = Date.parse(v);
  if (!Number.isNaN(at)) return Math.min(Math.max(at - Date.now(), 0), capMs);
  return undefined;
}

/** Exponential backoff with jitter: ~200 ms, 400 ms, 800 ms … capped at 5 s. */
export function backoffMs(attempt: number, baseMs = 200): number {
  const d = Math.min(baseMs * 2 ** attempt, 5000);
  return d / 2 + Math.random() * (d / 2);
}

export async function wait(ms: number, signal?: AbortSignal): Promise<void> {
  await sleep(ms, undefined, { signal });
}
