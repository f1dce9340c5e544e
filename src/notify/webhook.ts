/**
 * One POST of a JSON payload to the `[notify]` URL, on undici (loaded only when a webhook is
 * configured), and what came of it. Redirects are not followed: a receiver that moved is a
 * configuration to fix, and the token must not travel to wherever a redirect points.
 */
import { readFile } from 'node:fs/promises';
import type { Dispatcher } from 'undici';
import type { NotifyConfig } from '../config/config.ts';
import { retryAfterMs } from '../remotes/retry.ts';

export type PostResult =
  | { outcome: 'delivered'; status: number }
  /** The receiver refuses this payload (400, 413, 415, 422): sending it again would not help. */
  | { outcome: 'rejected'; status: number; detail: string }
  /** Not taken (unreachable, timed out, 5xx, 401, 404, …): try again later. */
  | { outcome: 'failed'; detail: string; retryAfterMs?: number };

export interface Webhook {
  /** Never throws for the receiver's failures; throws only when `signal` aborts. */
  post(body: string, signal: AbortSignal): Promise<PostResult>;
  close(): Promise<void>;
}

const REJECTS_PAYLOAD = new Set([400, 413, 415, 422]);
/** Of an answer that is not a success, what is kept to say why. */
const DETAIL_BYTES = 512;

export async function openWebhook(config: NotifyConfig): Promise<Webhook> {
  const { Agent, request } = await import('../remotes/http-client.ts');
  // Made at the first post: an unreadable CA file is then a failed attempt, retried while the events
  // wait, like a receiver that is down, not a daemon that cannot start.
  let agent: InstanceType<typeof Agent> | undefined;
  const dispatcher = async () => {
    if (agent) return agent;
    const ca = config.ca ? await readFile(config.ca) : undefined;
    return (agent = new Agent({
      connect: { timeout: config.timeoutMs, ...(ca ? { ca } : {}) },
      headersTimeout: config.timeoutMs,
      bodyTimeout: config.timeoutMs,
    }));
  };
  const fixedHeaders: Record<string, string> = {};
  for (const [k, v] of Object.entries(config.headers)) fixedHeaders[k.toLowerCase()] = v;
  fixedHeaders['content-type'] = 'application/json';
  fixedHeaders['user-agent'] ??= 'berth';
  // undici ignores a URL's user and password: they become basic auth, as curl and Flux make them.
  const url = new URL(config.url);
  if (url.username || url.password) {
    fixedHeaders.authorization = `Basic ${Buffer.from(`${decodeURIComponent(url.username)}:${decodeURIComponent(url.password)}`).toString('base64')}`;
    url.username = url.password = '';
  }

  return {
    async post(body, signal) {
      const headers = { ...fixedHeaders };
      let via: Dispatcher;
      try {
        if (config.tokenFile) headers.authorization = `Bearer ${(await readFile(config.tokenFile, 'utf8')).trim()}`;
        via = await dispatcher();
      } catch (err) {
        return { outcome: 'failed', detail: `notify.token_file or notify.ca: ${(err as Error).message}` };
      }
      try {
        const res = await request(url, {
          method: 'POST',
          headers,
          body,
          dispatcher: via,
          signal: AbortSignal.any([signal, AbortSignal.timeout(config.timeoutMs)]),
        });
        if (res.statusCode >= 200 && res.statusCode < 300) {
          await res.body.dump();
          return { outcome: 'delivered', status: res.statusCode };
        }
        const detail = `HTTP ${res.statusCode}${await bodyStart(res)}`;
        if (REJECTS_PAYLOAD.has(res.statusCode)) return { outcome: 'rejected', status: res.statusCode, detail };
        return { outcome: 'failed', detail, retryAfterMs: retryAfterMs(res.headers['retry-after'], Number.MAX_SAFE_INTEGER) };
      } catch (err) {
        signal.throwIfAborted();
        const e = err as Error & { code?: string; cause?: { code?: string; message?: string } };
        if (e.name === 'TimeoutError') return { outcome: 'failed', detail: `no answer within ${config.timeoutMs} ms (notify.timeout)` };
        return { outcome: 'failed', detail: [e.code ?? e.cause?.code, e.message, e.cause?.message].filter(Boolean).join(': ') };
      }
    },
    close: async () => {
      if (agent && !agent.closed && !agent.destroyed) await agent.close();
    },
  };
}

/** `: <the first bytes of the body, on one line>`, or nothing. */
async function bodyStart(res: Dispatcher.ResponseData): Promise<string> {
  const chunks: Buffer[] = [];
  let size = 0;
  try {
    for await (const c of res.body) {
      chunks.push(c as Buffer);
      size += (c as Buffer).length;
      if (size >= DETAIL_BYTES) break; // leaving the loop destroys the rest
    }
  } catch {
    // the answer's status says enough
  }
  const text = Buffer.concat(chunks).subarray(0, DETAIL_BYTES).toString('utf8').replace(/\s+/g, ' ').trim();
  return text ? `: ${text}` : '';
}
