/**
 * The webhook's sender and its queue (the events table of a real metadata.db, a cursor in
 * `settings`) against a real HTTP receiver on loopback, through undici. The back-off's waits are
 * recorded and shortened (an injected sleep), so it is checked by what it asked for, never by time.
 * The test wakes its senders when it adds events, as the daemon does after a turn.
 */
import { copyFile, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { createServer } from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DatabaseSync } from 'node:sqlite';
import { setTimeout as delay } from 'node:timers/promises';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { configFromObject } from '../../src/config/config.ts';
import { silentLogger } from '../../src/log.ts';
import { Metadata } from '../../src/metadata/metadata.ts';
import { CURSOR_SETTING, EventQueue } from '../../src/notify/event-queue.ts';
import { WebhookSender } from '../../src/notify/sender.ts';
import { openWebhook, type Webhook } from '../../src/notify/webhook.ts';
import { freePort, makeTlsCert } from '../helpers/registry.ts';
import { until as waitUntil } from '../helpers/e2e.ts';
import { Receiver } from './receiver.ts';

let dir: string;
let md: Metadata;
let receiver: Receiver;
const stops: Array<() => Promise<void>> = [];
/** The running senders: woken when the test adds events, as the daemon wakes its sender. */
const senders = new Set<WebhookSender>();

beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'berth-notify-'));
  md = Metadata.open(join(dir, 'metadata.db'));
  receiver = await Receiver.start();
});

afterEach(async () => {
  for (const stop of stops.splice(0)) await stop();
  await receiver.close();
  md.close();
  await rm(dir, { recursive: true, force: true });
});

function addEvents(n: number, from = 0): void {
  for (let i = 0; i < n; i++)
    md.addEvent({ object: { kind: 'Container', name: `c${from + i}` }, type: 'Normal', reason: 'Created', message: `event ${from + i}` });
  for (const s of senders) s.wake();
}

/** Poll every 10 ms, for up to 10 s. */
const until = (what: string, ok: () => boolean) => waitUntil(what, ok, 10_000, 10);

/** A sender on `md` posting to `url`; its back-off waits are recorded, and cut to a few ms. */
async function startSender(opts: { url?: string; queueSize?: number; notify?: Record<string, unknown>; backoffMax?: string } = {}) {
  const config = configFromObject({
    notify: { url: opts.url ?? receiver.url, queue_size: opts.queueSize ?? 1000, timeout: '2s', retry_backoff_max: opts.backoffMax ?? '30s', ...opts.notify },
  });
  const webhook: Webhook = await openWebhook(config.notify!);
  const waits: number[] = [];
  const pending: number[] = [];
  const queue = new EventQueue(md, config.notify!.queueSize);
  const sender = new WebhookSender({
    queue,
    webhook,
    device: 'kiosk-7',
    queueSize: config.notify!.queueSize,
    retryBackoffMaxMs: config.notify!.retryBackoffMaxMs,
    log: silentLogger(),
    onPending: (n) => pending.push(n),
    sleep: async (ms, signal) => {
      waits.push(ms);
      await delay(Math.min(ms, 5), undefined, { signal }).catch(() => {});
    },
  });
  const ac = new AbortController();
  const done = sender.run(ac.signal);
  senders.add(sender);
  let stopped: Promise<void> | undefined;
  const stop = () =>
    (stopped ??= (async () => {
      senders.delete(sender);
      ac.abort();
      await done;
      await webhook.close();
    })());
  stops.push(stop);
  return { sender, queue, waits, pending, stop };
}

describe('webhook sender', () => {
  it('posts each event once, in order, Flux-shaped, and saves how far it got', async () => {
    addEvents(2); // before the webhook was configured: not sent
    const first = md.lastEventId();
    const { stop } = await startSender();
    addEvents(5, 2);
    await until('5 events', () => receiver.received.length === 5);
    await until('the cursor saved once the queue is empty', () => md.getSetting(CURSOR_SETTING) === String(first + 5));
    await stop();
    expect(receiver.ids()).toEqual([first + 1, first + 2, first + 3, first + 4, first + 5]);
    const b = receiver.received[0]!.body;
    expect(b).toMatchObject({
      involvedObject: { kind: 'Container', name: 'c2' },
      severity: 'info',
      reason: 'Created',
      message: 'event 2',
      metadata: { device: 'kiosk-7' },
      reportingController: 'berth',
      reportingInstance: 'kiosk-7',
    });
    expect(new Date(b.timestamp).getTime()).toBeGreaterThan(0);
    expect(receiver.received[0]!.headers['content-type']).toBe('application/json');
  });

  it('keeps events while the receiver is down, across a restart of the sender, and delivers them all in order once', async () => {
    await receiver.close();
    const a = await startSender();
    addEvents(3);
    await until('a failed attempt', () => a.waits.length >= 2);
    await a.stop(); // berth stops (SIGTERM) while the receiver is still down
    expect(a.pending.at(-1)).toBe(3);
    const b = await startSender();
    addEvents(2, 3);
    await receiver.open();
    await until('5 events', () => receiver.received.length >= 5);
    await delay(100); // anything sent twice would arrive now
    await b.stop();
    expect(receiver.received.map((r) => r.body.message)).toEqual(['event 0', 'event 1', 'event 2', 'event 3', 'event 4']);
    expect(b.pending.at(-1)).toBe(0);
  });

  it('keeps the newest queue_size events and says how many were dropped before them', async () => {
    await receiver.close();
    const { waits, stop } = await startSender({ queueSize: 3 });
    addEvents(10);
    await until('a failed attempt', () => waits.length >= 1);
    await receiver.open();
    await until('the marker and 3 events', () => receiver.received.length >= 4);
    await stop();
    const [marker, ...rest] = receiver.received.map((r) => r.body);
    expect(marker).toMatchObject({
      reason: 'EventsDropped',
      severity: 'error',
      involvedObject: { kind: 'Device', name: 'kiosk-7' },
      metadata: { dropped: '7' },
    });
    expect(marker.id).toBeUndefined();
    expect(rest.map((b) => b.message)).toEqual(['event 7', 'event 8', 'event 9']);
  });

  it('counts events pruned from metadata.db as dropped too', async () => {
    md.close();
    md = Metadata.open(join(dir, 'metadata.db'), { maxEvents: 4 });
    await receiver.close();
    const { waits, stop } = await startSender();
    addEvents(6);
    await until('a failed attempt', () => waits.length >= 1);
    await receiver.open();
    await until('the marker and 4 events', () => receiver.received.length >= 5);
    await stop();
    expect(receiver.received[0]!.body.metadata.dropped).toBe('2');
    expect(receiver.received.slice(1).map((r) => r.body.message)).toEqual(['event 2', 'event 3', 'event 4', 'event 5']);
  });

  it('retries 5xx and 429 with a doubling, jittered back-off capped at retry_backoff_max', async () => {
    let n = 0;
    receiver.answer = () => (++n <= 6 ? 503 : n === 7 ? 429 : 200);
    const { waits, stop } = await startSender({ backoffMax: '5s' });
    addEvents(1);
    await until('the event', () => receiver.received.length === 1);
    await stop();
    expect(waits).toHaveLength(7);
    // 1 s doubling, with jitter (each wait is between half and all of its step), never above 5 s.
    for (const [i, w] of waits.slice(0, 6).entries()) {
      const step = Math.min(1000 * 2 ** i, 5000);
      expect(w).toBeGreaterThanOrEqual(step / 2);
      expect(w).toBeLessThanOrEqual(step);
    }
    expect(waits[6]).toBeLessThanOrEqual(5000);
  });

  it('honours Retry-After up to the cap', async () => {
    let n = 0;
    const port = await freePort();
    const server = createServer((req, res) => {
      req.resume();
      req.on('end', () =>
        ++n === 1 ? res.writeHead(503, { 'retry-after': '3' }).end() : n === 2 ? res.writeHead(503, { 'retry-after': '3600' }).end() : res.writeHead(204).end(),
      );
    });
    await new Promise<void>((r) => server.listen(port, '127.0.0.1', r));
    try {
      const { waits, stop } = await startSender({ url: `http://127.0.0.1:${port}/`, backoffMax: '10s' });
      addEvents(1);
      await until('the third attempt', () => n >= 3);
      await stop();
      expect(waits).toEqual([3000, 10_000]);
    } finally {
      server.close();
    }
  });

  it('skips a payload the receiver refuses (400) and goes on; retries a 401 until it is accepted', async () => {
    let unauthorized = 2;
    receiver.answer = (body) => (body.message === 'event 1' ? 400 : body.message === 'event 2' && unauthorized-- > 0 ? 401 : 200);
    const { waits, stop } = await startSender();
    addEvents(4);
    await until('3 events', () => receiver.received.length === 3);
    await stop();
    expect(receiver.received.map((r) => r.body.message)).toEqual(['event 0', 'event 2', 'event 3']);
    expect(waits).toHaveLength(2);
  });

  it('sends the configured headers and the token file (read at each request) as a bearer token', async () => {
    const tokenFile = join(dir, 'token');
    await writeFile(tokenFile, 'first-token\n');
    const { stop } = await startSender({ notify: { token_file: tokenFile, headers: { 'X-Fleet': 'eu-1' } } });
    addEvents(1);
    await until('1 event', () => receiver.received.length === 1);
    await writeFile(tokenFile, 'rotated-token\n');
    addEvents(1, 1);
    await until('2 events', () => receiver.received.length === 2);
    await stop();
    expect(receiver.received.map((r) => r.headers.authorization)).toEqual(['Bearer first-token', 'Bearer rotated-token']);
    expect(receiver.received[0]!.headers['x-fleet']).toBe('eu-1');
  });

  it("turns the URL's user and password into basic auth", async () => {
    const { stop } = await startSender({ url: receiver.url.replace('http://', 'http://fleet:s%3Acret@') });
    addEvents(1);
    await until('1 event', () => receiver.received.length === 1);
    await stop();
    expect(receiver.received[0]!.headers.authorization).toBe(`Basic ${Buffer.from('fleet:s:cret').toString('base64')}`);
  });

  it('reaches an https receiver with a private CA through notify.ca (once the file is there), and not without it', async () => {
    const { certFile, keyFile } = await makeTlsCert(dir);
    const port = await freePort();
    const got: string[] = [];
    const server = createHttpsServer({ cert: await readFile(certFile), key: await readFile(keyFile) }, (req, res) => {
      let body = '';
      req.on('data', (c) => (body += c));
      req.on('end', () => {
        got.push(JSON.parse(body).message);
        res.writeHead(200).end();
      });
    });
    await new Promise<void>((r) => server.listen(port, '127.0.0.1', r));
    try {
      const url = `https://127.0.0.1:${port}/hook`;
      const untrusted = await startSender({ url });
      addEvents(1);
      await until('two failed attempts', () => untrusted.waits.length >= 2);
      await untrusted.stop();
      expect(got).toEqual([]);
      // A CA file not there yet is a failed attempt, retried, not a sender that cannot start.
      const caFile = join(dir, 'hooks-ca.pem');
      const trusted = await startSender({ url, notify: { ca: caFile } });
      await until('a failed attempt', () => trusted.waits.length >= 1);
      await copyFile(certFile, caFile);
      await until('the event', () => got.length === 1);
      await trusted.stop();
      expect(got).toEqual(['event 0']);
    } finally {
      server.closeAllConnections();
      server.close();
    }
  });

  it('gives up on an attempt after notify.timeout and tries again', async () => {
    const port = await freePort();
    let n = 0;
    const server = createServer((_req, res) => {
      if (++n > 1) res.writeHead(200).end(); // the first request is never answered
    });
    await new Promise<void>((r) => server.listen(port, '127.0.0.1', r));
    try {
      const { waits, stop } = await startSender({ url: `http://127.0.0.1:${port}/`, notify: { timeout: '200ms' } });
      addEvents(1);
      await until('the second attempt', () => n >= 2);
      await until('delivered', () => md.getSetting(CURSOR_SETTING) === String(md.lastEventId()));
      await stop();
      expect(waits).toHaveLength(1);
      expect(md.getSetting(CURSOR_SETTING)).toBe(String(md.lastEventId()));
    } finally {
      server.closeAllConnections();
      server.close();
    }
  });
});

describe('event queue', () => {
  it('starts after the newest event, and a move not yet saved is delivered again (at least once)', () => {
    addEvents(3);
    const q = new EventQueue(md, 1000);
    expect(q.head()).toBeUndefined();
    addEvents(2, 3);
    const h = q.head()!;
    expect(h).toMatchObject({ dropped: 0, event: { message: 'event 3' } });
    q.advance(h.event.id);
    expect(q.head()!.event.message).toBe('event 4');
    // A kill -9 here: the move was never saved.
    expect(new EventQueue(md, 1000).head()!.event.message).toBe('event 3');
    q.save();
    expect(new EventQueue(md, 1000).head()!.event.message).toBe('event 4');
    expect(q.pending()).toBe(1);
  });

  it('writes nothing while there is nothing to deliver', () => {
    const q = new EventQueue(md, 1000);
    // data_version changes when another connection commits to the file.
    const watcher = new DatabaseSync(join(dir, 'metadata.db'), { readOnly: true });
    const version = () => (watcher.prepare('PRAGMA data_version').get() as { data_version: number }).data_version;
    const before = version();
    for (let i = 0; i < 10; i++) {
      expect(q.head()).toBeUndefined();
      q.save();
    }
    expect(version()).toBe(before);
    md.addEvent({ object: { kind: 'Container', name: 'x' }, type: 'Normal', reason: 'Created', message: 'a write' });
    expect(version()).not.toBe(before); // the probe sees writes
    watcher.close();
  });
});
