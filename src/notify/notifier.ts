/**
 * `[notify]` in `berth run`: every event and each change of the device's overall status, posted to
 * the webhook in order (src/notify/sender.ts), queued in metadata.db while it cannot be reached
 * (src/notify/event-queue.ts). Loaded only when a webhook is configured.
 *
 * After each turn, and every `pollMs` (2 s) between turns, the notifier judges the device's status
 * and wakes the sender; the timer finds what was written outside turns: events of the git source or
 * of another process (`berth apply`), and the git source's status row (a refused commit). The status
 * is not judged while a turn holds the reconcile lock: its status rows and its generation are
 * written one after the other, and the turn's end is judged anyway. Between turns only the objects'
 * rows can change, so the generation (a large row) is read only when they did.
 */
import type { Config } from '../config/config.ts';
import { deviceName } from '../config/device-name.ts';
import type { Logger } from '../log.ts';
import { RECONCILE_LOCK } from '../metadata/lock.ts';
import type { Metadata } from '../metadata/metadata.ts';
import { deviceStatus, recordDeviceStatus } from './device-status.ts';
import { EventQueue } from './event-queue.ts';
import { WebhookSender } from './sender.ts';
import { openWebhook } from './webhook.ts';

export interface Notifier {
  /** A reconcile turn ended: record the device's status if it changed, and deliver what is new. */
  afterTurn(): void;
  /** Stop delivering (a post in flight is abandoned and sent again next time) and save the cursor. */
  stop(): Promise<void>;
}

/** Where the events waiting are shown (`berth_notify_pending_events` of src/reconcile/metrics.ts). */
interface PendingGauge {
  notifyPending: { set(value: number): void };
}

export async function startNotifier(
  deps: { config: Config; log: Logger; metadata: Metadata; metrics?: PendingGauge },
  signal: AbortSignal,
  opts: { pollMs?: number } = {},
): Promise<Notifier | undefined> {
  const { config, metadata } = deps;
  const notify = config.notify;
  if (!notify) return undefined;
  const device = deviceName(config);
  const log = deps.log.child({ webhook: withoutSecrets(notify.url) });
  const webhook = await openWebhook(notify);
  const sender = new WebhookSender({
    queue: new EventQueue(metadata, notify.queueSize),
    webhook,
    device,
    queueSize: notify.queueSize,
    retryBackoffMaxMs: notify.retryBackoffMaxMs,
    log,
    onPending: deps.metrics && ((n) => deps.metrics!.notifyPending.set(n)),
  });
  const stopping = new AbortController();
  const stopAll = () => stopping.abort();
  signal.addEventListener('abort', stopAll, { once: true });
  const done = sender.run(stopping.signal).finally(() => webhook.close());
  log.info({ device, queueSize: notify.queueSize }, 'posting events to the webhook');
  let judged: string | undefined; // the objects not Ready at the last judgement
  const judgeStatus = (betweenTurns: boolean) => {
    try {
      const turn = betweenTurns ? metadata.getLock(RECONCILE_LOCK) : undefined;
      if (turn && turn.expiresAt.getTime() > Date.now()) return;
      const objects = metadata.listStatus();
      const notReady = deviceStatus(objects, undefined).details.notReady;
      if (betweenTurns && notReady === judged) return;
      judged = notReady;
      recordDeviceStatus(metadata, device, objects);
    } catch (err) {
      log.warn({ err }, 'cannot record the device status');
    }
  };
  const look = (betweenTurns: boolean) => {
    judgeStatus(betweenTurns);
    sender.wake();
  };
  const betweenTurns = setInterval(() => look(true), opts.pollMs ?? 2000);
  betweenTurns.unref();
  stopping.signal.addEventListener('abort', () => clearInterval(betweenTurns), { once: true });
  return {
    afterTurn() {
      look(false);
    },
    async stop() {
      signal.removeEventListener('abort', stopAll);
      stopping.abort();
      await done;
    },
  };
}

/** The URL for logs: no user, password or query (a token may hide in any of them). */
function withoutSecrets(url: string): string {
  const u = new URL(url);
  return `${u.protocol}//${u.host}${u.pathname}`;
}
