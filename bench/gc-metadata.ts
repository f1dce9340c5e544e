/**
 * Metadata and GC speed: committed transactions per second (synchronous=FULL, real fsync), the
 * reads a reconcile turn makes (200 containers, 50 images), and a full GC mark over a store of
 * 50 images × 20 layers plus 1000 unreferenced blobs (dry run, then the real sweep).
 *   node_modules/.bin/node bench/gc-metadata.ts
 */
import { createHash } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { openContentStore } from '../src/content/local-store.ts';
import { collectGarbage } from '../src/gc/collect.ts';
import { Metadata } from '../src/metadata/metadata.ts';

const root = mkdtempSync(join(process.env.BENCH_DIR ?? tmpdir(), 'berth-bench-gc-'));
const md = Metadata.open(join(root, 'metadata.db'));
const store = await openContentStore(root);
const ms = (t: bigint) => Number(process.hrtime.bigint() - t) / 1e6;

async function put(data: string): Promise<{ digest: string; size: number }> {
  const bytes = Buffer.from(data);
  const digest = `sha256:${createHash('sha256').update(bytes).digest('hex')}`;
  const w = await store.writer({ ref: digest, expected: digest });
  await w.write(bytes);
  await w.commit(bytes.length, digest);
  return { digest, size: bytes.length };
}

// 1. Transactions per second.
let t = process.hrtime.bigint();
const N = 300;
for (let i = 0; i < N; i++) {
  md.transaction(() => {
    md.createLease(`l${i}`);
    md.addLeaseResource(`l${i}`, { type: 'content', key: `sha256:${String(i).padStart(64, '0')}` });
  });
}
const txMs = ms(t);
for (let i = 0; i < N; i++) md.deleteLease(`l${i}`);

// 2. Store: 50 images of 20 layers, 200 containers, 1000 orphans.
const MT = 'application/vnd.oci.image.manifest.v1+json';
for (let i = 0; i < 50; i++) {
  const config = { mediaType: 'application/vnd.oci.image.config.v1+json', ...(await put(`config ${i}`)) };
  const layers = [];
  for (let l = 0; l < 20; l++) layers.push({ mediaType: 'application/vnd.oci.image.layer.v1.tar', ...(await put(`layer ${i}.${l}`)) });
  const m = await put(JSON.stringify({ schemaVersion: 2, mediaType: MT, config, layers }));
  md.putImage({
    name: `reg/img${i}:1`,
    target: { ...m, mediaType: MT },
    manifestDigest: m.digest,
    configDigest: config.digest,
    platform: 'linux/amd64',
    size: 1,
    labels: {},
  });
}
for (let c = 0; c < 200; c++) {
  md.putContainer({
    name: `c${c}`,
    specHash: `h${c}`,
    spec: { env: { A: String(c) } },
    image: `reg/img${c % 50}:1`,
    imageDigest: '',
    snapshotter: 'overlayfs',
    snapshotKey: `c${c}`,
    generation: 1,
  });
}
md.addGeneration({ desired: {}, result: 'applied' });
for (let o = 0; o < 1000; o++) await put(`orphan ${o}`);

// 3. The reads of one reconcile turn.
const reads: number[] = [];
for (let r = 0; r < 50; r++) {
  t = process.hrtime.bigint();
  md.transaction(() => [md.listImages(), md.listContainers(), md.listStatus(), md.activeLeases()]);
  reads.push(ms(t));
}
reads.sort((a, b) => a - b);

// 4. GC.
t = process.hrtime.bigint();
const dry = await collectGarbage({ metadata: md, content: store, snapshotters: [], dryRun: true });
const dryMs = ms(t);
t = process.hrtime.bigint();
const real = await collectGarbage({ metadata: md, content: store, snapshotters: [] });
const realMs = ms(t);

console.log(`metadata: ${N} committed transactions in ${txMs.toFixed(0)} ms = ${((N / txMs) * 1000).toFixed(0)}/s (synchronous=FULL, ${root})`);
console.log(`metadata: reconcile-turn reads (50 images, 200 containers) median ${reads[25]!.toFixed(2)} ms, max ${reads.at(-1)!.toFixed(2)} ms`);
console.log(`gc: dry run over ${dry.kept.blob + dry.items.length} blobs (${dry.kept.blob} kept, ${dry.items.length} unreferenced) in ${dryMs.toFixed(0)} ms`);
console.log(`gc: sweep of ${real.items.filter((i) => i.removed).length} blobs in ${realMs.toFixed(0)} ms`);
md.close();
rmSync(root, { recursive: true, force: true });
