/**
 * The webhook's sender: takes the head of the queue, posts it, and moves on only once the receiver
 * took it, so events arrive in the order they happened. A failure (unreachable, timed out, 5xx,
 * 401, …) is retried after a capped, jittered back-off (1 s doubling to `retryBackoffMaxMs`, or the
 * receiver's Retry-After, capped too) while new events wait behind it in the queue. A payload the
 * receiver refuses as such (400, 413, 415, 422) is skipped with a warning: sending it again would
 * block every event after it for good.
 *
 * An idle sender waits to be woken (`wake()`: after each turn, and on the notifier's timer for
 * events written outside turns or by another process), then reads the queue: a read, never a write.
 */
import { setTimeout as delay } from 'node:timers/promises';
import type { Logger } from '../log.ts';
import { RetryBudget } from '../remotes/retry.ts';
import type { EventQueue } from './event-queue.ts';
import { droppedPayload, eventPayload } from './payload.ts';
import type { Webhook } from './webhook.ts';

export interface SenderOptions {
  queue: EventQueue;
  webhook: Pick<Webhook, 'post'>;
  device: string;
  /** For the "dropped" marker's message. */
  queueSize: number;
  retryBackoffMaxMs: number;
  log: Logger;
  /** Deliveries between two saves of the cursor while a backlog drains. Default 50. */
  saveEvery?: number;
  now?: () => number;
  /** Told the events waiting after each attempt (for `berth_notify_pending_events`). */
  onPending?: (events: number) => void;
  /** The back-off's waits: resolve after `ms`, or early when `signal` aborts. For tests. */
  sleep?: (ms: number, signal: AbortSignal) => Promise<void>;
}

const FIRST_BACKOFF_MS = 1000;

export class WebhookSender {
  private readonly opts: SenderOptions;
  private readonly sleep: (ms: number, signal: AbortSignal) => Promise<void>;
  private readonly now: () => number;
  private woken = new AbortController();

  constructor(opts: SenderOptions) {
    this.opts = opts;
    this.now = opts.now ?? Date.now;
    this.sleep = opts.sleep ?? ((ms, signal) => delay(ms, undefined, { signal }).catch(() => {}));
  }

  /** New events may be there: an idle sender looks at once. */
  wake(): void {
    this.woken.abort();
  }

  /** Deliver until `signal` aborts; the cursor is saved on the way out. Never throws. */
  async run(signal: AbortSignal): Promise<void> {
    const { queue, log } = this.opts;
    const backoff = new RetryBudget(
      { budgetMs: Number.POSITIVE_INFINITY, initialBackoffMs: FIRST_BACKOFF_MS, maxBackoffMs: this.opts.retryBackoffMaxMs },
      this.now,
    );
    let failing = false;
    try {
      while (!signal.aborted) {
        let wait: number | undefined;
        try {
          const result = await this.deliverHead(signal);
          this.opts.onPending?.(result === 'empty' ? 0 : queue.pending());
          if (result === 'empty') {
            queue.save();
            await this.idle(signal);
            continue;
          }
          if (result.outcome === 'failed') {
            wait = backoff.nextDelay(result.retryAfterMs);
            if (!failing) log.warn({ err: result.detail, pending: queue.pending() }, 'webhook: cannot deliver; the events wait in metadata.db and are retried');
            else log.debug({ err: result.detail, pending: queue.pending(), attempts: backoff.attempts }, 'webhook: still cannot deliver');
            failing = true;
            queue.save();
          } else {
            if (failing) log.info({ attempts: backoff.attempts }, 'webhook: delivering again');
            failing = false;
            backoff.progress();
            if (queue.unsaved() >= (this.opts.saveEvery ?? 50)) queue.save();
          }
        } catch (err) {
          if (signal.aborted) break;
          // metadata.db busy or failing: the sender must not take the daemon down with it.
          log.warn({ err }, 'webhook: cannot read the event queue');
          wait = backoff.nextDelay();
        }
        if (wait !== undefined) await this.sleep(wait, signal);
      }
    } finally {
      try {
        queue.save();
      } catch (err) {
        log.warn({ err }, 'webhook: cannot save how far delivery got; the events after the last save will be sent again');
      }
    }
  }

  /** Post the head of the queue (a "dropped" marker first, when events were dropped before it). */
  private async deliverHead(signal: AbortSignal) {
    const { queue, device } = this.opts;
    const head = queue.head();
    if (!head) return 'empty' as const;
    const payload = head.dropped > 0 ? droppedPayload(head.dropped, this.opts.queueSize, device, new Date(this.now())) : eventPayload(head.event, device);
    const result = await this.opts.webhook.post(JSON.stringify(payload), signal);
    if (result.outcome === 'rejected')
      this.opts.log.warn({ id: payload.id, reason: payload.reason, err: result.detail }, 'webhook: the receiver refused an event; it is skipped');
    if (result.outcome !== 'failed') queue.advance(head.dropped > 0 ? head.event.id - 1 : head.event.id);
    return result;
  }

  /** Until `wake()` (or one came since the last look) or `signal` aborts. */
  private async idle(signal: AbortSignal): Promise<void> {
    const woken = this.woken.signal;
    if (!woken.aborted && !signal.aborted) {
      await new Promise<void>((resolve) => {
        const done = () => {
          signal.removeEventListener('abort', done);
          woken.removeEventListener('abort', done);
          resolve();
        };
        signal.addEventListener('abort', done, { once: true });
        woken.addEventListener('abort', done, { once: true });
      });
    }
    this.woken = new AbortController();
  }
}
