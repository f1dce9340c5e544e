import { existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, test } from 'vitest';
import type { Writer } from '../../src/content/content.ts';
import { openContentStore, type LocalContentStore } from '../../src/content/local-store.ts';
import { collectGarbage } from '../../src/gc/collect.ts';
import { Metadata } from '../../src/metadata/metadata.ts';
import { commitBlob } from '../helpers/blobs.ts';

const OCI_INDEX = 'application/vnd.oci.image.index.v1+json';
const OCI_MANIFEST = 'application/vnd.oci.image.manifest.v1+json';
const OCI_CONFIG = 'application/vnd.oci.image.config.v1+json';
const OCI_LAYER = 'application/vnd.oci.image.layer.v1.tar+gzip';

interface Desc {
  digest: string;
  mediaType: string;
  size: number;
}

let root: string;
let store: LocalContentStore;
let md: Metadata;
const open: Writer[] = [];

beforeEach(async () => {
  root = mkdtempSync(join(tmpdir(), 'berth-gc-'));
  store = await openContentStore(root);
  md = Metadata.open(join(root, 'metadata.db'));
});
afterEach(async () => {
  for (const w of open.splice(0)) await w.close();
  md.close();
  rmSync(root, { recursive: true, force: true });
});

async function put(data: string | Buffer, mediaType: string): Promise<Desc> {
  return { ...(await commitBlob(store, data)), mediaType };
}

/** A real little image in the store: config + layers + manifest (+ optionally an index). */
async function putImage(tag: string, opts: { index?: boolean } = {}) {
  const config = await put(JSON.stringify({ architecture: 'amd64', os: 'linux', tag }), OCI_CONFIG);
  const layers = [await put(`layer-1-${tag}`.repeat(100), OCI_LAYER), await put(`layer-2-${tag}`.repeat(50), OCI_LAYER)];
  const manifest = await put(JSON.stringify({ schemaVersion: 2, mediaType: OCI_MANIFEST, config, layers }), OCI_MANIFEST);
  let target = manifest;
  if (opts.index) {
    // The arm64 manifest was never pulled: absent from the store, as after a real pull.
    const other = { digest: `sha256:${'e'.repeat(64)}`, mediaType: OCI_MANIFEST, size: 300, platform: { os: 'linux', architecture: 'arm64' } };
    target = await put(
      JSON.stringify({ schemaVersion: 2, mediaType: OCI_INDEX, manifests: [{ ...manifest, platform: { os: 'linux', architecture: 'amd64' } }, other] }),
      OCI_INDEX,
    );
  }
  return { config, layers, manifest, target };
}

function record(name: string, img: Awaited<ReturnType<typeof putImage>>) {
  return md.putImage({
    name,
    target: img.target,
    manifestDigest: img.manifest.digest,
    configDigest: img.config.digest,
    platform: 'linux/amd64',
    size: img.config.size + img.manifest.size + img.layers.reduce((a, l) => a + l.size, 0),
    labels: {},
  });
}

const blobsOf = (img: Awaited<ReturnType<typeof putImage>>) =>
  [img.config, img.manifest, img.target, ...img.layers].map((d) => d.digest).filter((d, i, a) => a.indexOf(d) === i);

async function allBlobs(): Promise<Set<string>> {
  const s = new Set<string>();
  for await (const i of store.walk()) s.add(i.digest);
  return s;
}

describe('collectGarbage on a real content store', () => {
  test('removes unreferenced blobs, keeps every blob an image reaches through index and manifest', async () => {
    const kept = await putImage('kept', { index: true });
    record('reg/kept:1', kept);
    const gone = await putImage('gone');
    const orphan = await put('an orphan layer', OCI_LAYER);

    const report = await collectGarbage({ metadata: md, content: store, snapshotters: [] });

    const removed = report.items
      .filter((i) => i.kind === 'blob')
      .map((i) => i.key)
      .sort();
    expect(removed).toEqual([...blobsOf(gone), orphan.digest].sort());
    expect(report.items.every((i) => i.removed === true)).toBe(true);
    const left = await allBlobs();
    for (const d of blobsOf(kept)) expect(left.has(d), d).toBe(true);
    for (const d of removed) expect(left.has(d), d).toBe(false);
    expect(report.kept.blob).toBe(blobsOf(kept).length);
    expect(report.removedBytes).toBe(report.totalBytes);
    expect(report.totalBytes).toBe(gone.config.size + gone.manifest.size + gone.layers[0]!.size + gone.layers[1]!.size + orphan.size);
    expect(report.warnings).toEqual([]);
  });

  test('dry run reports the same items and removes nothing', async () => {
    record('reg/kept:1', await putImage('kept'));
    const gone = await putImage('gone');
    const before = await allBlobs();
    const dry = await collectGarbage({ metadata: md, content: store, snapshotters: [], dryRun: true });
    expect(dry.dryRun).toBe(true);
    expect(dry.items.map((i) => i.key).sort()).toEqual(blobsOf(gone).sort());
    expect(dry.items.every((i) => i.removed === undefined)).toBe(true);
    expect(dry.removedBytes).toBe(0);
    expect(await allBlobs()).toEqual(before);
  });

  test('a deleted image record makes its blobs collectable', async () => {
    const img = await putImage('x');
    record('reg/x:1', img);
    md.addGeneration({ desired: {}, result: 'applied' });
    expect((await collectGarbage({ metadata: md, content: store, snapshotters: [] })).items).toEqual([]);
    md.deleteImage('reg/x:1');
    const r = await collectGarbage({ metadata: md, content: store, snapshotters: [] });
    expect(r.items.map((i) => i.key).sort()).toEqual(blobsOf(img).sort());
    expect((await allBlobs()).size).toBe(0);
  });

  test('a container record keeps the manifest it runs even after its image moved on', async () => {
    const old = await putImage('old');
    const cur = await putImage('new');
    record('reg/app:1', cur);
    md.putContainer({
      name: 'web',
      specHash: 'h',
      spec: {},
      image: 'reg/app:1',
      imageDigest: old.manifest.digest,
      snapshotter: 'overlayfs',
      snapshotKey: 'web',
      generation: 1,
    });
    const r = await collectGarbage({ metadata: md, content: store, snapshotters: [] });
    expect(r.items).toEqual([]);
    expect(await allBlobs()).toEqual(new Set([...blobsOf(old), ...blobsOf(cur)]));
  });

  test('a live lease protects its blobs; an expired one does not', async () => {
    const leased = await put('leased layer', OCI_LAYER);
    const expired = await put('expired layer', OCI_LAYER);
    md.createLease('pull-live', { expiresAt: new Date(Date.now() + 3_600_000) });
    md.addLeaseResource('pull-live', { type: 'content', key: leased.digest });
    md.createLease('pull-dead', { expiresAt: new Date(Date.now() - 1000) });
    md.addLeaseResource('pull-dead', { type: 'content', key: expired.digest });
    const r = await collectGarbage({ metadata: md, content: store, snapshotters: [] });
    expect(r.items.map((i) => i.key)).toEqual([expired.digest]);
    expect(await allBlobs()).toEqual(new Set([leased.digest]));
    expect(r.expiredLeases).toEqual(['pull-dead']);
    expect(md.listLeases().map((l) => l.id)).toEqual(['pull-live']);
  });

  test('ingests: a leased one is kept, an abandoned one removed, one with a live writer kept and reported', async () => {
    const leasedW = await store.writer({ ref: 'layer-leased' });
    await leasedW.write(Buffer.alloc(1000, 1));
    await leasedW.close();
    md.createLease('pull-1');
    md.addLeaseResource('pull-1', { type: 'ingest', key: 'layer-leased' });

    const abandoned = await store.writer({ ref: 'layer-abandoned' });
    await abandoned.write(Buffer.alloc(2000, 2));
    await abandoned.close();

    const live = await store.writer({ ref: 'layer-live' });
    await live.write(Buffer.alloc(300, 3));
    open.push(live);

    const r = await collectGarbage({ metadata: md, content: store, snapshotters: [] });
    const byRef = Object.fromEntries(r.items.map((i) => [i.key, i]));
    expect(Object.keys(byRef).sort()).toEqual(['layer-abandoned', 'layer-live']);
    expect(byRef['layer-abandoned']).toMatchObject({ kind: 'ingest', size: 2000, removed: true });
    expect(byRef['layer-live']).toMatchObject({ kind: 'ingest', removed: false });
    expect(byRef['layer-live']!.error).toContain('live writer');
    expect(r.removedBytes).toBe(2000);
    expect((await store.listIngests()).map((i) => i.ref).sort()).toEqual(['layer-leased', 'layer-live']);
    expect(r.kept.ingest).toBe(1);
  });

  test('graceMs keeps recently updated unleased ingests and recently committed blobs', async () => {
    md.addGeneration({ desired: {}, result: 'applied' });
    const w = await store.writer({ ref: 'fresh' });
    await w.write(Buffer.alloc(10));
    await w.close();
    const blob = await put('fresh blob', OCI_LAYER);
    const r = await collectGarbage({ metadata: md, content: store, snapshotters: [], graceMs: 60_000 });
    expect(r.items).toEqual([]);
    expect(r.kept).toMatchObject({ blob: 1, ingest: 1 });
    expect((await store.listIngests()).map((i) => i.ref)).toEqual(['fresh']);
    const later = await collectGarbage({ metadata: md, content: store, snapshotters: [], graceMs: 60_000, now: () => new Date(Date.now() + 120_000) });
    expect(later.items.map((i) => i.key).sort()).toEqual([blob.digest, 'fresh'].sort());
  });

  test('a metadata with no record at all (lost metadata.db?) sweeps nothing unless forced', async () => {
    const img = await putImage('x');
    const r = await collectGarbage({ metadata: md, content: store, snapshotters: [] });
    expect(r.dryRun).toBe(true);
    expect(r.items.map((i) => i.key).sort()).toEqual(blobsOf(img).sort());
    expect(r.items.every((i) => i.removed === undefined)).toBe(true);
    expect(r.warnings.join()).toContain('lost or replaced');
    expect((await allBlobs()).size).toBe(blobsOf(img).length);
    const forced = await collectGarbage({ metadata: md, content: store, snapshotters: [], force: true });
    expect(forced.dryRun).toBe(false);
    expect(forced.removedBytes).toBeGreaterThan(0);
    expect((await allBlobs()).size).toBe(0);
  });

  test('a missing manifest an image needs: no blob is swept, and the report says why', async () => {
    const img = await putImage('broken');
    record('reg/broken:1', img);
    const orphan = await put('orphan', OCI_LAYER);
    // A container of the same image is followed first (without requiring the manifest): the
    // image's requirement must still count.
    md.putContainer({
      name: 'c',
      specHash: 'h',
      spec: {},
      image: 'reg/broken:1',
      imageDigest: img.manifest.digest,
      snapshotter: 'native',
      snapshotKey: 'c',
      generation: 1,
    });
    await store.delete(img.manifest.digest);
    const r = await collectGarbage({ metadata: md, content: store, snapshotters: [] });
    expect(r.items).toEqual([]);
    expect(r.warnings.join('\n')).toContain(img.manifest.digest);
    expect(r.warnings.join('\n')).toContain('reg/broken:1');
    expect((await allBlobs()).has(orphan.digest)).toBe(true);
    for (const l of img.layers) expect((await allBlobs()).has(l.digest)).toBe(true);
  });
});

describe('named volumes', () => {
  function makeVolumes(...names: string[]) {
    const dir = join(root, 'volumes');
    for (const n of names) {
      mkdirSync(join(dir, n, 'sub'), { recursive: true });
      writeFileSync(join(dir, n, 'sub', 'data.txt'), `precious ${n}`);
    }
    return dir;
  }

  test('are never removed without volumes: true, even when nothing uses them', async () => {
    const dir = makeVolumes('a', 'b');
    md.addGeneration({ desired: { containers: [], images: [], volumes: [] }, result: 'applied' });
    const r = await collectGarbage({ metadata: md, content: store, snapshotters: [], volumesDir: dir });
    expect(r.items).toEqual([]);
    expect(r.kept.volume).toBe(2);
    expect(existsSync(join(dir, 'a', 'sub', 'data.txt'))).toBe(true);
    expect(existsSync(join(dir, 'b', 'sub', 'data.txt'))).toBe(true);
  });

  test('with volumes: true, removes only those neither declared now nor mounted by a container record', async () => {
    const dir = makeVolumes('declared', 'mounted', 'unused');
    md.addGeneration({
      desired: { containers: [], images: [], volumes: [{ kind: 'Volume', metadata: { name: 'declared', labels: {} }, spec: {} }] },
      result: 'applied',
    });
    md.putContainer({
      name: 'db',
      specHash: 'h',
      spec: { image: 'x', mounts: [{ type: 'volume', name: 'mounted', target: '/data', readOnly: false }] },
      image: 'x',
      imageDigest: '',
      snapshotter: 'overlayfs',
      snapshotKey: 'db',
      generation: 1,
    });
    const dry = await collectGarbage({ metadata: md, content: store, snapshotters: [], volumesDir: dir, volumes: true, dryRun: true });
    expect(dry.items).toHaveLength(1);
    expect(dry.items[0]).toMatchObject({ kind: 'volume', key: 'unused' });
    expect(dry.items[0]!.size).toBeGreaterThanOrEqual('precious unused'.length);
    expect(existsSync(join(dir, 'unused'))).toBe(true);
    const r = await collectGarbage({ metadata: md, content: store, snapshotters: [], volumesDir: dir, volumes: true });
    expect(r.items.map((i) => [i.kind, i.key, i.removed])).toEqual([['volume', 'unused', true]]);
    expect(existsSync(join(dir, 'unused'))).toBe(false);
    expect(existsSync(join(dir, 'declared', 'sub', 'data.txt'))).toBe(true);
    expect(existsSync(join(dir, 'mounted', 'sub', 'data.txt'))).toBe(true);
  });

  test('with no applied generation, volumes: true removes nothing and says why', async () => {
    const dir = makeVolumes('v');
    const r = await collectGarbage({ metadata: md, content: store, snapshotters: [], volumesDir: dir, volumes: true });
    expect(r.items).toEqual([]);
    expect(r.warnings.join()).toContain('no applied generation');
    expect(existsSync(join(dir, 'v', 'sub', 'data.txt'))).toBe(true);
  });
});
