/** Retry policy for registry requests: what is worth retrying, and how long to wait. */
import { setTimeout as sleep } from 'node:timers/promises';

/** HTTP statuses that are worth another try (containerd retries 408/429 always, 5xx too). */
export function retryableStatus(status: number): boolean {
  return status === 408 || status === 429 || (status >= 500 && status <= 599 && status !== 501 && status !== 505);
}

const RETRYABLE_CODES = new Set([
  'ECONNRESET',
  'ECONNREFUSED',
  'ECONNABORTED',
  'EPIPE',
  'ETIMEDOUT',
  'EHOSTUNREACH',
  'ENETUNREACH',
  'ENETDOWN',
  'EAI_AGAIN',
  'ENOTFOUND',
  'UND_ERR_SOCKET',
  'UND_ERR_CONNECT_TIMEOUT',
  'UND_ERR_HEADERS_TIMEOUT',
  'UND_ERR_BODY_TIMEOUT',
  'UND_ERR_CLOSED',
  'UND_ERR_REQ_CONTENT_LENGTH_MISMATCH',
  'UND_ERR_RES_CONTENT_LENGTH_MISMATCH',
  'ERR_STREAM_PREMATURE_CLOSE',
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

/** How long and how hard to keep trying (from `[pull]` in the config). */
export interface RetryPolicy {
  /** Time allowed without a byte of progress before giving up (`pull.retry_budget`). */
  budgetMs: number;
  /** First back-off; it doubles after each failure (`pull.retry_backoff`). */
  initialBackoffMs: number;
  /** Longest wait between two attempts, a server's Retry-After included (`pull.retry_backoff_max`). */
  maxBackoffMs: number;
  /** Failed attempts in a row allowed on top of the time budget; undefined: only the budget counts (`pull.max_retries`). */
  maxRetries?: number;
}

/**
 * The retry budget of one piece of work (a blob, a manifest): failures are retried with capped
 * exponential back-off until `budgetMs` has passed without progress. Progress (bytes arriving)
 * gives a fresh budget and restarts the back-off, so a registry that is flaky but moving data
 * never runs a long download out of attempts; one that moves nothing is given up in bounded time.
 */
export class RetryBudget {
  private readonly policy: RetryPolicy;
  private readonly now: () => number;
  private deadline: number;
  private startedAt: number;
  private failures = 0;

  constructor(policy: RetryPolicy, now: () => number = Date.now) {
    this.policy = policy;
    this.now = now;
    this.startedAt = now();
    this.deadline = this.startedAt + policy.budgetMs;
  }

  /** Bytes arrived: the budget starts again. */
  progress(): void {
    this.failures = 0;
    this.startedAt = this.now();
    this.deadline = this.startedAt + this.policy.budgetMs;
  }

  /**
   * Record a failed attempt. Returns how long to wait before the next one, or undefined when the
   * budget (or `maxRetries`) is spent. `retryAfterMs` is what the server asked for, if anything.
   */
  nextDelay(retryAfterMs?: number): number | undefined {
    this.failures++;
    if (this.policy.maxRetries !== undefined && this.failures > this.policy.maxRetries) return undefined;
    const left = this.deadline - this.now();
    if (left <= 0) return undefined;
    const exp = Math.min(this.policy.initialBackoffMs * 2 ** Math.min(this.failures - 1, 30), this.policy.maxBackoffMs);
    // Jitter keeps many devices behind one registry from retrying in step.
    const backoff = exp / 2 + Math.random() * (exp / 2);
    // The last attempt is made when the budget ends rather than given up before it.
    return Math.min(retryAfterMs ?? backoff, this.policy.maxBackoffMs, left);
  }

  /** Failed attempts since the last progress. */
  get attempts(): number {
    return this.failures;
  }

  /** For error messages, e.g. "12.3s without progress (limits: pull.retry_budget 10m)". */
  spent(): string {
    const dur = (ms: number) => (ms >= 60_000 && ms % 60_000 === 0 ? `${ms / 60_000}m` : `${Number((ms / 1000).toFixed(1))}s`);
    const limits = [
      `pull.retry_budget ${dur(this.policy.budgetMs)}`,
      ...(this.policy.maxRetries !== undefined ? [`pull.max_retries ${this.policy.maxRetries}`] : []),
    ];
    return `${dur(this.now() - this.startedAt)} without progress (limits: ${limits.join(', ')})`;
  }
}

export async function wait(ms: number, signal?: AbortSignal): Promise<void> {
  await sleep(ms, undefined, { signal });
}
