/**
 * Locks and in-progress work after a power cut: an owner is alive only if this boot has a process
 * with its pid that started when it did. An empty lock file (its data never reached the disk), a
 * lock naming a live pid with another start time (a pid reused) and one from another boot are all
 * stale: the ref lock is taken over, the snapshotter's recovery removes the half-made snapshot and
 * build directory, GC collects the snapshot. A live holder (a real child process) is respected,
 * and a wait for it ends with Unavailable naming the lock and its holder.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { openContentStore, type LocalContentStore } from '../../src/content/local-store.ts';
import { acquireLock, isLocked, tryLock } from '../../src/content/ref-lock.ts';
import { isKind } from '../../src/errors.ts';
import { collectGarbage } from '../../src/gc/collect.ts';
import { Metadata } from '../../src/metadata/metadata.ts';
import { bootId, formatOwner, processStartTime, selfIdentity, type OwnerIdentity } from '../../src/owner-identity.ts';
import { OWNER_LABEL } from '../../src/snapshots/snapshot-owner.ts';
import { openSnapshotter } from '../../src/snapshots/select.ts';
import type { Snapshotter } from '../../src/snapshots/snapshotter.ts';

const self = () => selfIdentity();
/** This very process, alive, but with a start time it does not have: a reused pid. */
const reusedPid = (): OwnerIdentity => ({ ...self(), start: self().start + 1 });
/** This process's pid and start time, recorded in another boot. */
const otherBoot = (): OwnerIdentity => ({ ...self(), boot: bootId() === '0'.repeat(32) ? '1'.repeat(32) : '0'.repeat(32) });

let tmp: string;
let child: ChildProcess | undefined;
beforeEach(() => {
  tmp = mkdtempSync(join(tmpdir(), 'berth-stale-owners-'));
});
afterEach(() => {
  child?.kill('SIGKILL');
  child = undefined;
  rmSync(tmp, { recursive: true, force: true });
});

/** A live process other than this one, and its identity. */
async function liveChild(): Promise<OwnerIdentity> {
  child = spawn('sleep', ['1000'], { stdio: 'ignore' });
  await new Promise((resolve, reject) => child!.once('spawn', resolve).once('error', reject));
  const start = processStartTime(child.pid!);
  if (typeof start !== 'number') throw new Error(`no start time for ${child.pid}`);
  return { pid: child.pid!, start, boot: bootId() };
}

describe('ref locks', () => {
  const stale: Array<[string, () => string]> = [
    ['an empty lock file (a power cut before its data reached the disk)', () => ''],
    ['a garbled lock file', () => '\0\0\0\0'],
    ['a bare pid of a live process (pid 0 once made kill(0, 0) call it alive)', () => `${process.pid}\n`],
    ['a live pid with another start time (a reused pid)', () => `${formatOwner(reusedPid())}\n`],
    ['a lock from another boot', () => `${formatOwner(otherBoot())}\n`],
  ];
  for (const [what, content] of stale) {
    it(`takes over ${what}`, async () => {
      const path = join(tmp, 'x.lock');
      writeFileSync(path, content());
      expect(await isLocked(path)).toBe(false);
      const lock = await tryLock(path);
      expect(lock).toBeDefined();
      expect(readFileSync(path, 'utf8').trim()).toBe(formatOwner(self()));
      await lock!.release();
    });
  }

  it('respects a live holder, and a wait for it ends with Unavailable naming the lock and holder', async () => {
    const holder = await liveChild();
    const path = join(tmp, 'held.lock');
    writeFileSync(path, `${formatOwner(holder)}\n`);
    expect(await isLocked(path)).toBe(true);
    expect(await tryLock(path)).toBeUndefined();
    const err = await acquireLock(path, 'ingest demo', { timeoutMs: 50 }).catch((e) => e);
    expect(isKind(err, 'Unavailable'), String(err)).toBe(true);
    expect(err.message).toContain(path);
    expect(err.message).toContain(`pid ${holder.pid}`);
    // Once it is gone, the lock is stale.
    child!.kill('SIGKILL');
    await new Promise((resolve) => child!.once('exit', resolve));
    child = undefined;
    expect(await isLocked(path)).toBe(false);
  });

  it('a blob whose ref lock file is empty can be written again', async () => {
    const store: LocalContentStore = await openContentStore(join(tmp, 'root'));
    writeFileSync(store.lockPath('layer-1'), '');
    const w = await store.writer({ ref: 'layer-1', signal: AbortSignal.timeout(30_000) });
    await w.write(Buffer.from('hello'));
    await w.commit(5, 'sha256:2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824');
    expect(existsSync(store.lockPath('layer-1'))).toBe(false);
  });
});

describe.each(['native', 'overlayfs'] as const)('in-progress snapshots of the %s snapshotter', (name) => {
  let sn: Snapshotter;
  beforeEach(async () => {
    if (process.getuid?.() !== 0) throw new Error('this test needs root (the overlay snapshotter mounts)');
    sn = await openSnapshotter(join(tmp, 'root'), name, { recover: false });
  });
  afterEach(async () => {
    await sn.close();
  });

  async function keys(): Promise<string[]> {
    const out: string[] = [];
    for await (const i of sn.walk()) out.push(i.key);
    return out.sort();
  }

  it("recover() removes the work of a reused pid and of another boot, and keeps a live owner's", async () => {
    const live = await liveChild();
    await sn.prepare('extract-reused', undefined, { labels: { [OWNER_LABEL]: formatOwner(reusedPid()) } });
    await sn.prepare('extract-other-boot', undefined, { labels: { [OWNER_LABEL]: formatOwner(otherBoot()) } });
    await sn.prepare('extract-live', undefined, { labels: { [OWNER_LABEL]: formatOwner(live) } });
    const dir = `${sn.root}/snapshots`;
    for (const [tag, o] of [
      ['reused', reusedPid()],
      ['boot', otherBoot()],
      ['live', live],
    ] as const) {
      mkdirSync(`${dir}/new-${formatOwner(o)}-${Buffer.from(tag).toString('hex')}/fs`, { recursive: true });
    }
    await sn.recover();
    expect(await keys()).toEqual(['extract-live']);
    expect(existsSync(`${dir}/new-${formatOwner(reusedPid())}-${Buffer.from('reused').toString('hex')}`)).toBe(false);
    expect(existsSync(`${dir}/new-${formatOwner(otherBoot())}-${Buffer.from('boot').toString('hex')}`)).toBe(false);
    expect(existsSync(`${dir}/new-${formatOwner(live)}-${Buffer.from('live').toString('hex')}`)).toBe(true);
  });

  it("GC collects the active snapshot of a reused pid and keeps a live owner's", async () => {
    const md = Metadata.open(join(tmp, 'root', 'metadata.db'));
    try {
      md.addGeneration({ desired: {}, result: 'applied' });
      const store = await openContentStore(join(tmp, 'root'));
      const live = await liveChild();
      await sn.prepare('extract-reused', undefined, { labels: { [OWNER_LABEL]: formatOwner(reusedPid()) } });
      await sn.prepare('extract-live', undefined, { labels: { [OWNER_LABEL]: formatOwner(live) } });
      const r = await collectGarbage({ metadata: md, content: store, snapshotters: [sn] });
      expect(r.items.map((i) => i.key)).toEqual(['extract-reused']);
      expect(await keys()).toEqual(['extract-live']);
    } finally {
      md.close();
    }
  });
});
