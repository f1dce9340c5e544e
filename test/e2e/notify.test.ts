/**
 * `[notify]` through the daemon (issue 13, reporting): `berth run` with real runc posts every event
 * and each change of the device's status to a webhook receiver on loopback (a node:http server in
 * this test), in the order of the events table. With the receiver down, events wait in metadata.db
 * (the cursor stays behind); after a `kill -9` of berth and a restart, and then the receiver's
 * return, they all arrive, in order, each once. With `queue_size = 3`, only the newest 3 do, after
 * a marker counting the rest. `/metrics` names the device and the applied revision in `berth_info`.
 */
import { execFile } from 'node:child_process';
import { join } from 'node:path';
import { DatabaseSync } from 'node:sqlite';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { freePort } from '../helpers/registry.ts';
import { containerDoc, DEMO_REF, E2eRoot, requireE2e, until, writeManifest, type Background } from '../helpers/e2e.ts';
import { Receiver } from '../notify/receiver.ts';

const git = (cwd: string, ...args: string[]) =>
  promisify(execFile)('git', ['-C', cwd, '-c', 'user.name=t', '-c', 'user.email=t@example.invalid', ...args], { encoding: 'utf8' });

let e: E2eRoot;
let receiver: Receiver;
let metricsPort: number;
let daemon: Background | undefined;

const config = (queueSize: number) =>
  `[device]\nname = "kiosk-7"\n[metrics]\naddress = "127.0.0.1:${metricsPort}"\n[reconcile]\nresync_interval = "5m"\n` +
  `[notify]\nurl = "${receiver.url}"\nretry_backoff_max = "1s"\nqueue_size = ${queueSize}\n`;

beforeAll(async () => {
  requireE2e();
  receiver = await Receiver.start();
  metricsPort = await freePort();
  e = await E2eRoot.create('notify');
  await e.writeConfig(config(1000));
  await e.importDemo();
  await git(e.manifests, 'init', '-q');
}, 60_000);

afterAll(async () => {
  await daemon?.stop();
  await receiver?.close();
  await e?.cleanup();
});

const doc = (name: string) => {
  const d = containerDoc(name, { image: DEMO_REF }) as { spec: Record<string, unknown> };
  d.spec.update = { confirmAfter: '1s' };
  return d;
};

/** Commit the manifests with containers `names`: the revision berth records. */
async function commitManifests(names: string[]): Promise<string> {
  await writeManifest(join(e.manifests, 'app.yaml'), names.map(doc));
  await git(e.manifests, 'add', '-A');
  await git(e.manifests, 'commit', '-q', '-m', names.join(' '));
  return (await git(e.manifests, 'rev-parse', 'HEAD')).stdout.trim();
}

interface EventRow {
  id: number;
  object: { kind: string; name: string };
  reason: string;
  details?: Record<string, string>;
}

const events = async () => (await e.status()).events as unknown as EventRow[];

/** The device status event saying that `revision` is applied and every object is Ready. */
const readyAt = (revision: string) => (ev: EventRow) => ev.object.kind === 'Device' && ev.details?.state === 'Ready' && ev.details.revision === revision;
/** The same, as the receiver got it. */
const postedReadyAt = (revision: string) => (body: any) => readyAt(revision)({ ...body, object: body.involvedObject, details: body.metadata });

/** The cursor as saved in metadata.db: how far the receiver is known to have got. */
function savedCursor(): number {
  const db = new DatabaseSync(join(e.root, 'metadata.db'), { readOnly: true });
  try {
    return Number((db.prepare("SELECT value FROM settings WHERE key = 'notify.delivered'").get() as { value: string } | undefined)?.value);
  } finally {
    db.close();
  }
}

const metric = async () => (await fetch(`http://127.0.0.1:${metricsPort}/metrics`)).text();

describe('berth run with [notify]', () => {
  let start = 0;
  let rev1 = '';

  it('posts the events of a change and the device status, in order', async () => {
    rev1 = await commitManifests(['a']);
    daemon = e.start('run', '-f', e.manifests);
    await until('the device Ready at the first revision, at the receiver', () => receiver.received.some((r) => postedReadyAt(rev1)(r.body)), 60_000, 100);
    const all = await events();
    const got = receiver.received.map((r) => r.body);
    start = got[0].id - 1;
    // Every event after the cursor's start, in id order, each once: what berth status lists.
    expect(got.map((b) => b.id)).toEqual(all.filter((ev) => ev.id > start).map((ev) => ev.id));
    expect(got.map((b) => `${b.involvedObject.kind}/${b.reason}`)).toEqual(
      expect.arrayContaining(['Generation/NewGeneration', 'Container/Created', 'Device/StatusChanged']),
    );
    const ready = got.find(postedReadyAt(rev1));
    expect(ready).toMatchObject({ reportingInstance: 'kiosk-7', severity: 'info', metadata: { device: 'kiosk-7', revision: rev1 } });
    expect(await metric()).toMatch(new RegExp(`^berth_info\\{device="kiosk-7",revision="${rev1}"\\} 1$`, 'm'));
  });

  it('keeps events on disk while the receiver is down, across a kill -9 and a restart, and delivers them all in order once', async () => {
    await until('the cursor saved', () => savedCursor() === receiver.received.at(-1)!.body.id);
    await receiver.close();
    const rev2 = await commitManifests(['a', 'b']);
    await until('b confirmed', async () => (await events()).some(readyAt(rev2)), 60_000, 250);
    const queued = (await events()).filter((ev) => ev.id > savedCursor());
    expect(queued.length).toBeGreaterThan(3); // NewGeneration, Created b, Confirmed, status changes: on disk, not delivered
    await until('the backlog on /metrics', async () => /^berth_notify_pending_events [1-9]/m.test(await metric()), 10_000, 200);

    daemon!.child.kill('SIGKILL');
    await daemon!.done;
    daemon = e.start('run', '-f', e.manifests);
    await daemon.waitFor(/berth status for details/, 30_000);
    const rev3 = await commitManifests(['a', 'b', 'c']);
    await until('c confirmed', async () => (await events()).some(readyAt(rev3)), 60_000, 250);

    await receiver.open();
    const last = Math.max(...(await events()).map((ev) => ev.id));
    await until('every event at the receiver', () => receiver.received.at(-1)?.body.id === last, 30_000, 100);
    await new Promise((r) => setTimeout(r, 500)); // a repeat would arrive now
    const all = (await events()).filter((ev) => ev.id > start);
    expect(receiver.ids()).toEqual(all.map((ev) => ev.id));
    expect(all.filter(readyAt(rev2))).toHaveLength(1);
    expect(await metric()).toMatch(new RegExp(`^berth_info\\{device="kiosk-7",revision="${rev3}"\\} 1$`, 'm'));
    await until('no backlog on /metrics', async () => /^berth_notify_pending_events 0$/m.test(await metric()), 10_000, 200);
  });

  it('with queue_size = 3, delivers the newest 3 after a marker counting the dropped ones', async () => {
    await until('the cursor saved', () => savedCursor() === receiver.received.at(-1)!.body.id);
    const stopped = await daemon!.stop();
    expect(stopped.code).toBe(0);
    await e.writeConfig(config(3));
    await receiver.close();
    daemon = e.start('run', '-f', e.manifests);
    await daemon.waitFor(/berth status for details/, 30_000);
    const rev4 = await commitManifests(['a', 'b', 'c', 'd']);
    await until('d confirmed', async () => (await events()).some(readyAt(rev4)), 60_000, 250);
    const cursor = savedCursor();
    const waiting = (await events()).filter((ev) => ev.id > cursor);
    expect(waiting.length).toBeGreaterThan(3);

    const before = receiver.received.length;
    await receiver.open();
    await until('the marker and 3 events', () => receiver.received.length >= before + 4, 30_000, 100);
    await new Promise((r) => setTimeout(r, 500));
    const got = receiver.received.slice(before).map((r) => r.body);
    expect(got).toHaveLength(4);
    expect(got[0]).toMatchObject({
      reason: 'EventsDropped',
      involvedObject: { kind: 'Device', name: 'kiosk-7' },
      metadata: { dropped: String(waiting.length - 3) },
    });
    expect(got.slice(1).map((b) => b.id)).toEqual(waiting.slice(-3).map((ev) => ev.id));
  });
});
