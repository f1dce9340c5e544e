/**
 * One conformance suite, run against both snapshotters, with real mounts (bind and overlay).
 */
import { existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mountAll, unmount } from '../../src/snapshots/mount.ts';
import { NativeSnapshotter } from '../../src/snapshots/native/native.ts';
import { OverlaySnapshotter } from '../../src/snapshots/overlay/overlay.ts';
import { openSnapshotter, overlaySupported, snapshotterRoot } from '../../src/snapshots/select.ts';
import { OWNER_LABEL, ownedBySelf } from '../../src/snapshots/snapshot-owner.ts';
import { formatOwner, selfIdentity } from '../../src/owner-identity.ts';
import type { Mount, Snapshotter } from '../../src/snapshots/snapshotter.ts';
import { applyTarget } from '../../src/images/unpack.ts';

let tmp: string;
const mounted: string[] = [];
beforeAll(async () => {
  if (process.getuid?.() !== 0) throw new Error('test/snapshots needs root to mount');
  tmp = mkdtempSync(`${tmpdir()}/berth-snap-`);
  if (!(await overlaySupported(tmp))) throw new Error(`overlayfs does not work in ${tmp}: the overlay half of this suite cannot run`);
});
afterAll(async () => {
  for (const m of mounted.reverse()) await unmount(m).catch(() => {});
  rmSync(tmp, { recursive: true, force: true });
});

let n = 0;
async function mountAt(mounts: Mount[]): Promise<string> {
  const target = `${tmp}/mnt${n++}`;
  mkdirSync(target);
  await mountAll(mounts, target);
  mounted.push(target);
  return target;
}
async function umountAt(target: string): Promise<void> {
  await unmount(target);
  mounted.splice(mounted.indexOf(target), 1);
}

/** Write into an active snapshot the way a layer would be applied (its upper dir / its tree). */
function dirOf(mounts: Mount[]): string {
  return applyTarget(mounts).dir;
}

const kinds = [
  ['overlayfs', (root: string) => new OverlaySnapshotter(snapshotterRoot(root, 'overlayfs'))],
  ['native', (root: string) => new NativeSnapshotter(snapshotterRoot(root, 'native'))],
] as const;

for (const [name, make] of kinds) {
  describe(`snapshotter conformance: ${name}`, () => {
    let root: string;
    let sn: Snapshotter;
    beforeAll(() => {
      root = `${tmp}/${name}-root`;
      sn = make(root);
    });
    afterAll(() => sn.close());

    it('lays out containerd dirs: <root>/io.containerd.snapshotter.v1.<name>/{metadata.db,snapshots}', () => {
      expect(sn.root).toBe(`${root}/io.containerd.snapshotter.v1.${name}`);
      expect(existsSync(`${sn.root}/metadata.db`)).toBe(true);
      expect(existsSync(`${sn.root}/snapshots`)).toBe(true);
    });

    it('prepare → write → commit → view shows the committed tree read-only', async () => {
      const m = await sn.prepare('a-active', undefined, { labels: { l: '1' } });
      writeFileSync(`${dirOf(m)}/hello`, 'world');
      const info = await sn.stat('a-active');
      expect(info.kind).toBe('active');
      expect(info.labels).toEqual({ l: '1' });
      expect(existsSync(`${sn.root}/snapshots/${info.id}`)).toBe(true);
      await sn.commit('a', 'a-active');
      await expect(sn.stat('a-active')).rejects.toMatchObject({ kind: 'NotFound' });
      expect((await sn.stat('a')).kind).toBe('committed');
      expect((await sn.usage('a')).size).toBeGreaterThan(0);
      const v = await mountAt(await sn.view('a-view', 'a'));
      expect(readFileSync(`${v}/hello`, 'utf8')).toBe('world');
      expect(() => writeFileSync(`${v}/nope`, 'x')).toThrow(/EROFS|read-only/);
      await umountAt(v);
      await sn.remove('a-view');
    });

    it('a child sees its parent, its own changes and whiteouts; the parent is unchanged', async () => {
      const m = await sn.prepare('b-active', 'a');
      // Active snapshots are writable through their mount.
      const t = await mountAt(m);
      expect(readFileSync(`${t}/hello`, 'utf8')).toBe('world');
      writeFileSync(`${t}/second`, '2');
      await umountAt(t);
      await sn.commit('b', 'b-active');
      const v = await mountAt(await sn.view('b-view', 'b'));
      expect(readdirSync(v).sort()).toEqual(['hello', 'second']);
      await umountAt(v);
      const va = await mountAt(await sn.view('a-view2', 'a'));
      expect(readdirSync(va)).toEqual(['hello']);
      await umountAt(va);
      await sn.remove('b-view');
      await sn.remove('a-view2');
    });

    it('peekMounts shows a committed snapshot read-only and records nothing', async () => {
      const count = async () => {
        let n = 0;
        for await (const _ of sn.walk()) n++;
        return n;
      };
      const before = await count();
      const t = await mountAt(await sn.peekMounts('b'));
      expect(readdirSync(t).sort()).toEqual(['hello', 'second']);
      expect(() => writeFileSync(`${t}/third`, '3')).toThrow(/EROFS|read-only/);
      await umountAt(t);
      expect(await count()).toBe(before);
    });

    it('walk lists every snapshot with kind and parent', async () => {
      const all: Record<string, { kind: string; parent?: string }> = {};
      for await (const s of sn.walk()) all[s.key] = { kind: s.kind, parent: s.parent };
      expect(all).toEqual({ a: { kind: 'committed', parent: undefined }, b: { kind: 'committed', parent: 'a' } });
    });

    it('refuses duplicates, missing or uncommitted parents, removing parents, committing non-active', async () => {
      await expect(sn.prepare('a')).rejects.toMatchObject({ kind: 'AlreadyExists' });
      await expect(sn.prepare('x', 'missing')).rejects.toMatchObject({ kind: 'NotFound' });
      await sn.prepare('c-active', 'b');
      await expect(sn.prepare('x', 'c-active')).rejects.toMatchObject({ kind: 'FailedPrecondition' });
      await expect(sn.remove('a')).rejects.toMatchObject({ kind: 'FailedPrecondition' });
      await expect(sn.commit('z', 'a')).rejects.toMatchObject({ kind: 'FailedPrecondition' });
      await expect(sn.commit('a', 'c-active')).rejects.toMatchObject({ kind: 'AlreadyExists' });
      await expect(sn.stat('nothing')).rejects.toMatchObject({ kind: 'NotFound' });
      await sn.remove('c-active');
    });

    it('remove deletes the directory; children first', async () => {
      const id = (await sn.stat('b')).id;
      await sn.remove('b');
      expect(existsSync(`${sn.root}/snapshots/${id}`)).toBe(false);
      await sn.remove('a');
      const left = [];
      for await (const s of sn.walk()) left.push(s.key);
      expect(left).toEqual([]);
    });

    it('mounts a 60-layer chain, past the kernel mount-option size limit', async () => {
      let parent: string | undefined;
      for (let i = 0; i < 60; i++) {
        const m = await sn.prepare(`deep-${i}-active`, parent);
        writeFileSync(`${dirOf(m)}/f${i}`, String(i));
        await sn.commit(`deep-${i}`, `deep-${i}-active`);
        parent = `deep-${i}`;
      }
      const mounts = await sn.prepare('deep-top', parent);
      if (name === 'overlayfs') expect(mounts[0]!.options.join(',').length).toBeGreaterThan(4096);
      const t = await mountAt(mounts);
      expect(readdirSync(t).length).toBe(60);
      expect(readFileSync(`${t}/f0`, 'utf8')).toBe('0');
      expect(readFileSync(`${t}/f59`, 'utf8')).toBe('59');
      await umountAt(t);
      await sn.remove('deep-top');
      for (let i = 59; i >= 0; i--) await sn.remove(`deep-${i}`);
    });

    it('recover() removes half-made, half-removed, unrecorded and orphaned-by-crash snapshots', async () => {
      const m = await sn.prepare('keep-active');
      writeFileSync(`${dirOf(m)}/k`, 'k');
      await sn.commit('keep', 'keep-active');
      // An unpack by an older berth that died: active, labelled with a bare pid (names no owner).
      await sn.prepare('extract-dead', 'keep', { labels: { [OWNER_LABEL]: '999999999' } });
      // Our own in-progress work must survive.
      await sn.prepare('extract-live', 'keep', { labels: ownedBySelf() });
      const dir = `${sn.root}/snapshots`;
      mkdirSync(`${dir}/new-deadbeef/fs`, { recursive: true });
      mkdirSync(`${dir}/new-999999999-dead/fs`, { recursive: true });
      // A snapshot another live process is building right now must be left alone.
      const building = `new-${formatOwner(selfIdentity())}-b1d`;
      mkdirSync(`${dir}/${building}/fs`, { recursive: true });
      mkdirSync(`${dir}/rm-7-abcd`, { recursive: true });
      mkdirSync(`${dir}/4242`, { recursive: true });
      // A record whose directory vanished (containerd #3369), with a child.
      const gone = await sn.prepare('gone-active');
      await sn.commit('gone', 'gone-active');
      await sn.prepare('gone-child', 'gone');
      rmSync(`${dir}/${(await sn.stat('gone')).id}`, { recursive: true });
      await sn.recover();
      expect(existsSync(`${dir}/${building}`)).toBe(true);
      rmSync(`${dir}/${building}`, { recursive: true });
      const keys = [];
      for await (const s of sn.walk()) keys.push(s.key);
      expect(keys.sort()).toEqual(['extract-live', 'keep']);
      const ids = new Set([(await sn.stat('keep')).id, (await sn.stat('extract-live')).id]);
      expect(readdirSync(dir).sort()).toEqual([...ids].sort());
      expect(gone.length).toBe(1);
      await sn.remove('extract-live');
      await sn.remove('keep');
    });

    it(`commit with a new parent is ${name === 'overlayfs' ? 'accepted' : 'refused'} (parallel unpack)`, async () => {
      const m = await sn.prepare('base-active');
      writeFileSync(`${dirOf(m)}/base`, 'b');
      await sn.commit('base', 'base-active');
      const m2 = await sn.prepare('top-active');
      writeFileSync(`${dirOf(m2)}/top`, 't');
      if (name === 'native') {
        await expect(sn.commit('top', 'top-active', { parent: 'base' })).rejects.toMatchObject({ kind: 'FailedPrecondition' });
        await sn.remove('top-active');
      } else {
        await sn.commit('top', 'top-active', { parent: 'base' });
        expect((await sn.stat('top')).parent).toBe('base');
        const v = await mountAt(await sn.view('top-view', 'top'));
        expect(readdirSync(v).sort()).toEqual(['base', 'top']);
        await umountAt(v);
        await sn.remove('top-view');
        await sn.remove('top');
      }
      await sn.remove('base');
    });
  });
}

describe('openSnapshotter', () => {
  it('auto picks overlayfs where an overlay mount works, and recovers on open', async () => {
    const root = `${tmp}/auto`;
    mkdirSync(`${snapshotterRoot(root, 'overlayfs')}/snapshots/new-x`, { recursive: true });
    const sn = await openSnapshotter(root, 'auto');
    expect(sn.name).toBe('overlayfs');
    expect(sn.layerFormat).toBe('overlay');
    expect(existsSync(`${sn.root}/snapshots/new-x`)).toBe(false);
    await sn.close();
    const nat = await openSnapshotter(root, 'native');
    expect(nat.name).toBe('native');
    expect(nat.root).toBe(`${root}/io.containerd.snapshotter.v1.native`);
    await nat.close();
    await expect(openSnapshotter(root, 'zfs' as any)).rejects.toMatchObject({ kind: 'InvalidArgument' });
  });

  it('auto keeps the snapshotter a root already has, without probing again', async () => {
    const root = `${tmp}/auto-kept`;
    mkdirSync(`${snapshotterRoot(root, 'native')}/snapshots`, { recursive: true });
    const sn = await openSnapshotter(root, 'auto');
    expect(sn.name).toBe('native'); // a probe would have said overlayfs here
    await sn.close();
    expect(readdirSync(root).filter((n) => n.startsWith('overlay-probe-'))).toEqual([]);
  });
});
