/**
 * GC against what a real pull leaves behind: images pulled over HTTP from a real registry into a
 * real content store and unpacked into real native snapshots; GC keeps every bit of them, removes
 * exactly one image's own blobs and snapshots once its record is gone, and a GC running in a loop
 * during a pull never takes anything the pull needs (its lease).
 */
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, expect, test } from 'vitest';
import { defaultConfig } from '../../src/config/config.ts';
import { openContentStore, type LocalContentStore } from '../../src/content/local-store.ts';
import { verifyContent } from '../../src/content/verify.ts';
import { collectGarbage } from '../../src/gc/collect.ts';
import { pull, type UnpackContext } from '../../src/images/pull.ts';
import { unpackImage } from '../../src/images/unpack.ts';
import { silentLogger } from '../../src/log.ts';
import { Metadata } from '../../src/metadata/metadata.ts';
import { openSnapshotter } from '../../src/snapshots/select.ts';
import type { Snapshotter } from '../../src/snapshots/snapshotter.ts';
import { buildImage, buildIndex, pushImage, type BuiltImage } from '../helpers/images.ts';
import { startRegistry, type RunningRegistry } from '../helpers/registry.ts';

let reg: RunningRegistry;
let root: string;
let store: LocalContentStore;
let md: Metadata;
let sn: Snapshotter;
const log = silentLogger();
let shared: BuiltImage;
let app: BuiltImage;
let tool: BuiltImage;
let big: BuiltImage;

beforeAll(async () => {
  reg = await startRegistry();
  root = mkdtempSync(join(tmpdir(), 'berth-gc-pull-'));
  store = await openContentStore(root);
  md = Metadata.open(join(root, 'metadata.db'));
  sn = await openSnapshotter(root, 'native');
  const base = { files: { 'etc/os-release': 'ID=berth-test\n', 'bin/base': 'base' } };
  // app: an index (amd64 + arm64 + an attestation) sharing its base layer with tool.
  const amd = await buildImage({ layers: [base, { files: { 'app/main': 'amd64 app' } }] });
  const arm = await buildImage({ platform: 'linux/arm64', layers: [base, { files: { 'app/main': 'arm64 app' } }] });
  shared = amd;
  app = buildIndex([amd, arm], { attestation: true });
  tool = await buildImage({ layers: [base, { files: { 'usr/bin/tool': 'tool' } }, { files: { 'usr/share/doc': 'docs' } }] });
  big = await buildImage({
    layers: Array.from({ length: 6 }, (_, i) => ({ files: { [`data/${i}`]: randomBytes(256 * 1024) }, compression: 'none' as const })),
  });
  await pushImage(reg.url, 'app', 'v1', app);
  await pushImage(reg.url, 'tool', 'v1', tool);
  await pushImage(reg.url, 'big', 'v1', big);
});
afterAll(async () => {
  await sn?.close();
  md?.close();
  await reg?.stop();
  rmSync(root, { recursive: true, force: true });
});

function unpackInto(s: Snapshotter) {
  return async (ctx: UnpackContext) => {
    const chainIds = await unpackImage({
      layers: ctx.manifest.layers,
      diffIds: ctx.config.rootfs.diff_ids,
      open: async (desc, signal) => {
        await ctx.whenLayerCommitted(ctx.manifest.layers.indexOf(desc));
        return store.open(desc.digest, { signal });
      },
      snapshotter: s,
      signal: ctx.signal,
    });
    return { snapshotter: s.name, chainIds };
  };
}

const pullOne = (ref: string) => pull({ ref, platform: 'linux/amd64', config: defaultConfig({ root }), log, store, metadata: md, unpack: unpackInto(sn) });

async function blobSet(): Promise<Set<string>> {
  const s = new Set<string>();
  for await (const i of store.walk()) s.add(i.digest);
  return s;
}
async function snapshotKeys(): Promise<Set<string>> {
  const s = new Set<string>();
  for await (const i of sn.walk()) s.add(i.key);
  return s;
}

test('pulled images are kept whole; deleting one record frees exactly its own blobs and snapshots', async () => {
  const a = await pullOne(`${reg.host}/app:v1`);
  const t = await pullOne(`${reg.host}/tool:v1`);
  md.addGeneration({ desired: {}, result: 'applied' });
  const blobsBefore = await blobSet();
  const snapsBefore = await snapshotKeys();
  expect(snapsBefore.size).toBe(4); // shared base + app layer + tool's two

  const none = await collectGarbage({ metadata: md, content: store, snapshotters: [sn] });
  expect(none.items).toEqual([]);
  expect(none.warnings).toEqual([]); // the arm64 manifest and the attestation were never pulled: fine
  expect(await blobSet()).toEqual(blobsBefore);

  md.deleteImage(a.record.name);
  const r = await collectGarbage({ metadata: md, content: store, snapshotters: [sn] });
  const appOnly = [app.root.digest, shared.root.digest, shared.config!.digest, shared.layers![1]!.digest];
  expect(
    r.items
      .filter((i) => i.kind === 'blob')
      .map((i) => i.key)
      .sort(),
  ).toEqual(appOnly.sort());
  expect(r.items.filter((i) => i.kind === 'snapshot').map((i) => i.key)).toEqual([a.record.chainIds![1]]);
  // tool is whole: its blobs verify and its chain (including the shared base) is there.
  const left = await blobSet();
  for (const d of tool.blobs.keys()) expect(left.has(d), d).toBe(true);
  for await (const v of verifyContent(store)) expect(v.ok, v.digest).toBe(true);
  expect(await snapshotKeys()).toEqual(new Set(t.record.chainIds));
});

test('a GC loop running during a pull never removes what the pull is fetching or unpacking', async () => {
  let stop = false;
  let rounds = 0;
  const removedDuring: string[] = [];
  const loop = (async () => {
    while (!stop) {
      const r = await collectGarbage({ metadata: md, content: store, snapshotters: [sn] });
      removedDuring.push(...r.items.filter((i) => i.removed).map((i) => i.key));
      rounds++;
      await new Promise((res) => setTimeout(res, 2));
    }
  })();
  const b = await pullOne(`${reg.host}/big:v1`);
  stop = true;
  await loop;
  expect(rounds).toBeGreaterThan(3);
  for (const d of big.blobs.keys()) expect(removedDuring, d).not.toContain(d);
  const blobs = await blobSet();
  for (const d of big.blobs.keys()) expect(blobs.has(d), d).toBe(true);
  const snaps = await snapshotKeys();
  for (const c of b.record.chainIds!) expect(snaps.has(c), c).toBe(true);
  // And once it is recorded, a GC keeps it.
  const after = await collectGarbage({ metadata: md, content: store, snapshotters: [sn] });
  expect(after.items.filter((i) => i.kind !== 'ingest')).toEqual([]);
});
