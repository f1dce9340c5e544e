import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, test } from 'vitest';
import { isKind } from '../../src/errors.ts';
import { acquireLock, withLock } from '../../src/metadata/lock.ts';
import { Metadata } from '../../src/metadata/metadata.ts';

let dir: string;
let dbPath: string;
let t: number;
beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'berth-md-rec-'));
  dbPath = join(dir, 'metadata.db');
  t = 1_000_000;
});
afterEach(() => rmSync(dir, { recursive: true, force: true }));
const clock = () => new Date(t);

describe('containers', () => {
  test('put, get, list, delete keep every field; createdAt survives an update', () => {
    const md = Metadata.open(dbPath, { now: clock });
    const rec = {
      name: 'web',
      specHash: 'h1',
      spec: { image: 'busybox', env: { A: '1' }, ports: [80] },
      image: 'busybox',
      imageDigest: 'sha256:' + 'a'.repeat(64),
      snapshotter: 'overlayfs',
      snapshotKey: 'berth/web/1',
      generation: 3,
    };
    expect(md.putContainer(rec)).toEqual({ ...rec, labels: {}, createdAt: new Date(t), updatedAt: new Date(t) });
    t += 500;
    const up = md.putContainer({ ...rec, specHash: 'h2', generation: 4, labels: { x: 'y' } });
    expect(up.createdAt).toEqual(new Date(1_000_000));
    expect(up.updatedAt).toEqual(new Date(1_000_500));
    expect(up.specHash).toBe('h2');
    expect(up.labels).toEqual({ x: 'y' });
    md.putContainer({ ...rec, name: 'api' });
    expect(md.listContainers().map((c) => c.name)).toEqual(['api', 'web']);
    expect(md.deleteContainer('web')).toBe(true);
    expect(md.deleteContainer('web')).toBe(false);
    expect(md.getContainer('web')).toBeUndefined();
    md.close();
  });
});

describe('generations', () => {
  test('current is the newest applied, previous the one before; failed ones are recorded but not current', () => {
    const md = Metadata.open(dbPath, { now: clock });
    expect(md.currentGeneration()).toBeUndefined();
    const g1 = md.addGeneration({ revision: 'abc', desired: { containers: ['a'] }, result: 'applied' });
    expect(md.currentGeneration()).toEqual({
      id: g1.id,
      revision: 'abc',
      appliedAt: new Date(t),
      desired: { containers: ['a'] },
      result: 'applied',
      changed: [],
    });
    expect(md.previousGeneration()).toBeUndefined();
    const g2 = md.addGeneration({ desired: { containers: ['a', 'b'] } });
    expect(g2.result).toBe('pending');
    expect(g2).not.toHaveProperty('revision');
    expect(md.currentGeneration()!.id).toBe(g1.id);
    md.setGenerationResult(g2.id, 'applied');
    expect(md.currentGeneration()!.id).toBe(g2.id);
    expect(md.previousGeneration()!.id).toBe(g1.id);
    const g3 = md.addGeneration({ revision: 'bad', desired: {}, result: 'failed', message: 'web: image not found' });
    expect(md.currentGeneration()!.id).toBe(g2.id);
    expect(md.latestGeneration()).toMatchObject({ id: g3.id, result: 'failed', message: 'web: image not found' });
    expect(md.listGenerations().map((g) => g.id)).toEqual([g3.id, g2.id, g1.id]);
    expect(() => md.setGenerationResult(999, 'applied')).toThrow(expect.objectContaining({ kind: 'NotFound' }));
    md.close();
  });

  test('pruning keeps the newest N plus the current and previous applied ones', () => {
    const md = Metadata.open(dbPath, { maxGenerations: 3 });
    const a = md.addGeneration({ desired: 1, result: 'applied' });
    const b = md.addGeneration({ desired: 2, result: 'applied' });
    for (let i = 0; i < 10; i++) md.addGeneration({ desired: i, result: 'failed' });
    const ids = md.listGenerations().map((g) => g.id);
    expect(ids).toHaveLength(5);
    expect(ids).toContain(a.id);
    expect(ids).toContain(b.id);
    expect(md.currentGeneration()!.id).toBe(b.id);
    expect(md.previousGeneration()!.id).toBe(a.id);
    md.close();
  });
});

describe('object status', () => {
  test('set keeps the last applied revision unless given; null clears it', () => {
    const md = Metadata.open(dbPath, { now: clock });
    md.setStatus({ kind: 'Container', name: 'web', state: 'Ready', reason: 'Running', message: 'up', lastAppliedRevision: 'r1', generation: 2 });
    t += 1;
    const s = md.setStatus({ kind: 'Container', name: 'web', state: 'Stalled', reason: 'PullFailed', message: 'registry down' });
    expect(s).toEqual({
      kind: 'Container',
      name: 'web',
      state: 'Stalled',
      reason: 'PullFailed',
      message: 'registry down',
      lastAppliedRevision: 'r1',
      generation: 2,
      updatedAt: new Date(t),
    });
    expect(md.setStatus({ kind: 'Container', name: 'web', state: 'Ready', reason: 'R', message: '', lastAppliedRevision: null })).not.toHaveProperty(
      'lastAppliedRevision',
    );
    md.setStatus({ kind: 'Image', name: 'busybox', state: 'Reconciling', reason: 'Pulling', message: '' });
    expect(md.listStatus().map((x) => `${x.kind}/${x.name}`)).toEqual(['Container/web', 'Image/busybox']);
    expect(md.deleteStatus('Image', 'busybox')).toBe(true);
    expect(md.getStatus('Image', 'busybox')).toBeUndefined();
    md.close();
  });
});

describe('events', () => {
  test('capped to the newest maxEvents, listed oldest first, filterable by object and after an id', () => {
    const md = Metadata.open(dbPath, { now: clock, maxEvents: 5 });
    for (let i = 0; i < 8; i++) {
      md.addEvent({ object: { kind: 'Container', name: i % 2 ? 'odd' : 'even' }, type: i === 7 ? 'Warning' : 'Normal', reason: 'R', message: `m${i}` });
    }
    expect(md.listEvents().map((e) => e.message)).toEqual(['m3', 'm4', 'm5', 'm6', 'm7']);
    expect(md.listEvents({ limit: 2 }).map((e) => e.message)).toEqual(['m6', 'm7']);
    expect(md.listEvents({ object: { kind: 'Container', name: 'odd' } }).map((e) => e.message)).toEqual(['m3', 'm5', 'm7']);
    const all = md.listEvents();
    expect(md.listEvents({ afterId: all[2]!.id }).map((e) => e.message)).toEqual(['m6', 'm7']);
    expect(all.at(-1)).toMatchObject({ type: 'Warning', object: { kind: 'Container', name: 'odd' }, time: new Date(t) });
    md.close();
  });
});

describe('locks', () => {
  test('held by a live process until it expires; release and renew need the token', () => {
    const alive = new Set([111, 222]);
    const md = Metadata.open(dbPath, { now: clock, isProcessAlive: (p) => alive.has(p) });
    const a = md.tryAcquireLock('reconcile', { holder: 'berth run', ttlMs: 1000, pid: 111 });
    expect(a.acquired).toBe(true);
    const b = md.tryAcquireLock('reconcile', { holder: 'berth apply', ttlMs: 1000, pid: 222 });
    expect(b).toMatchObject({ acquired: false, heldBy: { holder: 'berth run', pid: 111 } });
    // renewing pushes the expiry
    t += 900;
    const renewed = md.renewLock((a as any).lock, 1000);
    t += 900;
    expect(md.tryAcquireLock('reconcile', { holder: 'berth apply', ttlMs: 1000, pid: 222 }).acquired).toBe(false);
    // expired: taken over even though the holder's pid is alive
    t += 200;
    const c = md.tryAcquireLock('reconcile', { holder: 'berth apply', ttlMs: 1000, pid: 222 });
    expect(c.acquired).toBe(true);
    expect(() => md.renewLock(renewed, 1000)).toThrow(expect.objectContaining({ kind: 'FailedPrecondition' }));
    md.releaseLock(renewed); // not ours any more: no effect
    expect(md.getLock('reconcile')!.holder).toBe('berth apply');
    md.releaseLock((c as any).lock);
    expect(md.getLock('reconcile')).toBeUndefined();
    md.close();
  });

  test('a lock whose pid is dead is taken over before expiry', () => {
    const md = Metadata.open(dbPath, { now: clock, isProcessAlive: (p) => p === 222 });
    md.tryAcquireLock('reconcile', { holder: 'dead', ttlMs: 60_000, pid: 111 });
    expect(md.tryAcquireLock('reconcile', { holder: 'live', ttlMs: 60_000, pid: 222 }).acquired).toBe(true);
    md.close();
  });

  test('acquireLock gives up with Unavailable naming the holder; withLock releases after the work', async () => {
    const a = Metadata.open(dbPath);
    const b = Metadata.open(dbPath);
    const order: string[] = [];
    await withLock(a, 'reconcile', { holder: 'berth run' }, async () => {
      order.push('a');
      try {
        await acquireLock(b, 'reconcile', { holder: 'berth apply', waitMs: 50, pollMs: 10 });
        order.push('b-acquired');
      } catch (err) {
        expect(isKind(err, 'Unavailable')).toBe(true);
        expect(String(err)).toContain('berth run');
        expect(String(err)).toContain(`pid ${process.pid}`);
        order.push('b-refused');
      }
    });
    const lock = await acquireLock(b, 'reconcile', { holder: 'berth apply' });
    expect(order).toEqual(['a', 'b-refused']);
    expect(lock.holder).toBe('berth apply');
    a.close();
    b.close();
  });
});

describe('validation by the schema', () => {
  test('an unknown status state or event type is InvalidArgument, and nothing is written', () => {
    const md = Metadata.open(dbPath);
    expect(() => md.setStatus({ kind: 'Container', name: 'x', state: 'Happy' as any, reason: '', message: '' })).toThrow(
      expect.objectContaining({ kind: 'InvalidArgument' }),
    );
    expect(() => md.addEvent({ object: { kind: 'Container', name: 'x' }, type: 'Info' as any, reason: '', message: '' })).toThrow(
      expect.objectContaining({ kind: 'InvalidArgument' }),
    );
    expect(md.listStatus()).toEqual([]);
    expect(md.listEvents()).toEqual([]);
    md.close();
  });
});
