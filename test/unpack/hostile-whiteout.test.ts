/**
 * Issue 8, item 1: a whiteout whose remainder is '', '.' or '..' (`.wh.`, `.wh..`, `.wh...`) once
 * named the snapshot's parent directory, and a native apply removed every other snapshot. Through
 * the real snapshotters and both apply paths: the hostile layer is refused by name, the snapshots
 * already committed keep every file, and no half-made snapshot is left.
 */
import { existsSync, mkdtempSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { Readable } from 'node:stream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { selectLayerApplier, type ApplyPath } from '../../src/diff/layer-applier.ts';
import { unpackImage } from '../../src/images/unpack.ts';
import { openSnapshotter } from '../../src/snapshots/select.ts';
import { HELPER_CACHE } from '../helpers/apply-paths.ts';
import { compressLayer, makeLayerTar } from '../helpers/layers.ts';

let tmp: string;
beforeAll(() => {
  if (process.getuid?.() !== 0) throw new Error('test/unpack needs root (overlay mounts, lchown)');
  tmp = mkdtempSync(`${tmpdir()}/berth-hostile-wh-`);
});
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

async function layer(entries: Parameters<typeof makeLayerTar>[0]) {
  return compressLayer(await makeLayerTar(entries), 'gzip');
}

async function unpack(sn: Awaited<ReturnType<typeof openSnapshotter>>, l: Awaited<ReturnType<typeof layer>>, apply: ApplyPath) {
  return unpackImage({
    layers: [{ mediaType: l.mediaType, digest: l.digest, size: l.size }],
    diffIds: [l.diffId],
    snapshotter: sn,
    signal: AbortSignal.timeout(10_000),
    open: async () => Readable.from([l.blob]),
    applier: await selectLayerApplier(apply, HELPER_CACHE),
  });
}

for (const [kind, apply] of [
  ['native', 'js'],
  ['overlayfs', 'js'],
  ['native', 'native'],
  ['overlayfs', 'native'],
] as const) {
  describe(`a whiteout naming the layer's own parent (${kind} snapshotter, ${apply} apply)`, () => {
    for (const hidden of ['..', '.', '']) {
      it(`refuses .wh.${hidden} and leaves every other snapshot intact`, async () => {
        const root = mkdtempSync(`${tmp}/${kind}-`);
        const sn = await openSnapshotter(root, kind);
        try {
          const benign = await layer([
            { type: 'dir', name: 'bin' },
            { type: 'file', name: 'bin/app', content: 'keep me' },
          ]);
          const [committed] = await unpack(sn, benign, apply);
          const dirsBefore = readdirSync(`${sn.root}/snapshots`).sort();

          const hostile = await layer([{ type: 'whiteout', name: hidden }]);
          const err = await unpack(sn, hostile, apply).catch((e) => e);
          expect(err.kind).toBe('InvalidArgument');
          expect(err.message).toMatch(/invalid whiteout name/);
          expect(err.message).toContain(`.wh.${hidden}`);

          expect(readdirSync(`${sn.root}/snapshots`).sort()).toEqual(dirsBefore);
          const keys: string[] = [];
          for await (const s of sn.walk()) keys.push(`${s.kind}:${s.key}`);
          expect(keys.filter((k) => k.startsWith('committed:'))).toEqual([`committed:${committed}`]);
          // The committed layer's files are all still on disk.
          const files = readdirSync(`${sn.root}/snapshots`).flatMap((d) => {
            const p = [`${sn.root}/snapshots/${d}/fs/bin/app`, `${sn.root}/snapshots/${d}/bin/app`].find((x) => existsSync(x));
            return p ? [readFileSync(p, 'utf8')] : [];
          });
          expect(files).toContain('keep me');
          expect(existsSync(sn.root)).toBe(true);
        } finally {
          await sn.close();
        }
      });
    }
  });
}
