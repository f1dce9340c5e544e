import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, test } from 'vitest';
import { openContentStore, type LocalContentStore } from '../../src/content/local-store.ts';
import { collectGarbage } from '../../src/gc/collect.ts';
import { Metadata } from '../../src/metadata/metadata.ts';
import { OWNER_LABEL, ownedBySelf } from '../../src/snapshots/snapshot-owner.ts';
import { bootId, formatOwner } from '../../src/owner-identity.ts';
import { openSnapshotter } from '../../src/snapshots/select.ts';
import type { Mount, Snapshotter } from '../../src/snapshots/snapshotter.ts';

/** The directory a layer is written into: a bind mount's source, or an overlay's upperdir. */
function writableDir(mounts: Mount[]): string {
  const m = mounts[0]!;
  if (m.type === 'bind') return m.source;
  const upper = m.options.find((o) => o.startsWith('upperdir='));
  if (!upper) throw new Error(`no writable dir in ${JSON.stringify(mounts)}`);
  return upper.slice('upperdir='.length);
}

describe.each(['native', 'overlayfs'] as const)('collectGarbage with the real %s snapshotter', (name) => {
  let root: string;
  let store: LocalContentStore;
  let md: Metadata;
  let sn: Snapshotter;

  beforeEach(async () => {
    root = mkdtempSync(join(tmpdir(), `berth-gc-sn-${name}-`));
    store = await openContentStore(root);
    md = Metadata.open(join(root, 'metadata.db'));
    sn = await openSnapshotter(root, name);
    expect(sn.name).toBe(name);
  });
  afterEach(async () => {
    await sn?.close();
    md?.close();
    rmSync(root, { recursive: true, force: true });
  });

  /** prepare → write a file of `bytes` → commit as `committedName` (a layer, as unpack does). */
  async function layer(committedName: string, parent: string | undefined, bytes: number): Promise<void> {
    const key = `extract-${committedName}`;
    const mounts = await sn.prepare(key, parent);
    writeFileSync(join(writableDir(mounts), `${committedName}.bin`), Buffer.alloc(bytes, 7));
    await sn.commit(committedName, key);
  }

  async function keys(): Promise<string[]> {
    const out: string[] = [];
    for await (const i of sn.walk()) out.push(i.key);
    return out.sort();
  }

  test('removes unreferenced snapshots children first; keeps image chains, container layers and leased snapshots', async () => {
    md.addGeneration({ desired: {}, result: 'applied' });
    await layer('c1', undefined, 1000);
    await layer('c2', 'c1', 2000);
    md.putImage({
      name: 'reg/app:1',
      target: { digest: `sha256:${'a'.repeat(64)}`, mediaType: 'application/vnd.oci.image.manifest.v1+json', size: 1 },
      manifestDigest: `sha256:${'a'.repeat(64)}`,
      configDigest: `sha256:${'b'.repeat(64)}`,
      platform: 'linux/amd64',
      size: 1,
      snapshotter: name,
      chainIds: ['c1', 'c2'],
      labels: {},
    });
    // The image's manifest is not in the content store: blobs are not swept, snapshots still are.
    await sn.prepare('web', 'c2');
    md.putContainer({ name: 'web', specHash: 'h', spec: {}, image: 'reg/app:1', imageDigest: '', snapshotter: name, snapshotKey: 'web', generation: 1 });

    await layer('o1', undefined, 64 * 1024);
    await layer('o2', 'o1', 10);
    await sn.prepare('extract-dead', 'o2');

    await sn.prepare('extract-live');
    md.createLease('unpack', { expiresAt: new Date(Date.now() + 60_000) });
    md.addLeaseResource('unpack', { type: 'snapshot', key: `${name}/extract-live` });

    const dry = await collectGarbage({ metadata: md, content: store, snapshotters: [sn], dryRun: true });
    expect(dry.items.map((i) => i.key)).toEqual(['extract-dead', 'o2', 'o1']);
    expect(await keys()).toEqual(['c1', 'c2', 'extract-dead', 'extract-live', 'o1', 'o2', 'web']);

    const r = await collectGarbage({ metadata: md, content: store, snapshotters: [sn] });
    expect(r.items.map((i) => [i.kind, i.snapshotter, i.key, i.removed])).toEqual([
      ['snapshot', name, 'extract-dead', true],
      ['snapshot', name, 'o2', true],
      ['snapshot', name, 'o1', true],
    ]);
    expect(r.items.find((i) => i.key === 'o1')!.size).toBeGreaterThanOrEqual(64 * 1024);
    expect(r.kept.snapshot).toBe(4);
    expect(await keys()).toEqual(['c1', 'c2', 'extract-live', 'web']);

    // Once the lease ends and the container record goes, their snapshots follow; the image keeps its chain.
    md.deleteLease('unpack');
    md.deleteContainer('web');
    const r2 = await collectGarbage({ metadata: md, content: store, snapshotters: [sn] });
    expect(r2.items.map((i) => i.key).sort()).toEqual(['extract-live', 'web']);
    expect(await keys()).toEqual(['c1', 'c2']);
    md.deleteImage('reg/app:1');
    await collectGarbage({ metadata: md, content: store, snapshotters: [sn] });
    expect(await keys()).toEqual([]);
  });

  test("an active snapshot owned by a live process (an unpack in progress) is kept with its parents; a dead owner's is removed", async () => {
    md.addGeneration({ desired: {}, result: 'applied' });
    await layer('p1', undefined, 10);
    await sn.prepare('extract-mine c2', 'p1', { labels: ownedBySelf() });
    const dead = spawnSync('true').pid!; // exited: its pid is free
    await sn.prepare('extract-dead c9', undefined, { labels: { [OWNER_LABEL]: formatOwner({ pid: dead, start: 1, boot: bootId() }) } });
    const r = await collectGarbage({ metadata: md, content: store, snapshotters: [sn] });
    expect(r.items.map((i) => i.key)).toEqual(['extract-dead c9']);
    expect(await keys()).toEqual(['extract-mine c2', 'p1']);
  });

  test('graceMs keeps a freshly committed layer nothing references yet', async () => {
    md.addGeneration({ desired: {}, result: 'applied' });
    await layer('fresh', undefined, 10);
    expect((await collectGarbage({ metadata: md, content: store, snapshotters: [sn], graceMs: 60_000 })).items).toEqual([]);
    expect(await keys()).toEqual(['fresh']);
  });
});
