/**
 * The notifier as `berth run` starts it: the device status is judged after a turn and between
 * turns (a row the git source writes on its own), never while a turn holds the reconcile lock, and
 * what it records reaches the receiver.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as delay } from 'node:timers/promises';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { configFromObject } from '../../src/config/config.ts';
import { silentLogger } from '../../src/log.ts';
import { RECONCILE_LOCK } from '../../src/metadata/lock.ts';
import { Metadata } from '../../src/metadata/metadata.ts';
import { startNotifier, type Notifier } from '../../src/notify/notifier.ts';
import { until as waitUntil } from '../helpers/e2e.ts';
import { Receiver } from './receiver.ts';

let dir: string;
let md: Metadata;
let receiver: Receiver;
let notifier: Notifier | undefined;
const ac = new AbortController();

beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'berth-notifier-'));
  md = Metadata.open(join(dir, 'metadata.db'));
  receiver = await Receiver.start();
  const config = configFromObject({ root: dir, device: { name: 'kiosk-7' }, notify: { url: receiver.url } });
  notifier = await startNotifier({ config, log: silentLogger(), metadata: md }, ac.signal, { pollMs: 20 });
});

afterEach(async () => {
  await notifier?.stop();
  await receiver.close();
  md.close();
  await rm(dir, { recursive: true, force: true });
});

/** Poll every 10 ms, for up to 10 s. */
const until = (what: string, ok: () => boolean) => waitUntil(what, ok, 10_000, 10);
const statusEvents = () => receiver.received.map((r) => r.body).filter((b) => b.reason === 'StatusChanged');
const deviceEvents = () => md.listEvents({ object: { kind: 'Device', name: 'kiosk-7' } });

describe('notifier', () => {
  it('reports the device status after a turn, and a change between turns once no turn holds the lock', async () => {
    md.setStatus({ kind: 'Container', name: 'web', state: 'Ready', reason: 'UpToDate', message: 'running' });
    notifier!.afterTurn();
    await until('Ready at the receiver', () => statusEvents().length === 1);
    expect(statusEvents()[0]).toMatchObject({ involvedObject: { kind: 'Device', name: 'kiosk-7' }, metadata: { state: 'Ready' } });

    // A turn holds the lock: what it has written so far is not judged.
    const turn = md.tryAcquireLock(RECONCILE_LOCK, { holder: 'a turn', ttlMs: 60_000 });
    if (!turn.acquired) throw new Error('lock not acquired');
    md.setStatus({ kind: 'Source', name: 'ssh://git.example/fleet.git', state: 'Stalled', reason: 'NotSigned', message: 'commit 3f2a is not signed' });
    await delay(300); // 15 checks
    expect(deviceEvents()).toHaveLength(1);

    md.releaseLock(turn.lock); // between turns: the git source's row alone changes the status
    await until('Stalled at the receiver', () => statusEvents().length === 2);
    expect(statusEvents()[1]).toMatchObject({
      severity: 'error',
      metadata: { state: 'Stalled', previousState: 'Ready', notReady: 'Source/ssh://git.example/fleet.git=Stalled/NotSigned' },
    });
    await delay(100);
    expect(deviceEvents()).toHaveLength(2); // nothing more while nothing changes
  });
});
