import { mkdirSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { Readable } from 'node:stream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { selectLayerApplier } from '../../src/diff/layer-applier.ts';
import { unpackImage, type LayerEvent } from '../../src/images/unpack.ts';
import { chainIds } from '../../src/oci/chain-id.ts';
import { diskUsage } from '../../src/snapshots/dir-snapshotter.ts';
import { openSnapshotter } from '../../src/snapshots/select.ts';
import type { Snapshotter } from '../../src/snapshots/snapshotter.ts';
import { HELPER_CACHE } from '../helpers/apply-paths.ts';
import { compressLayer, makeLayerTar } from '../helpers/layers.ts';

let tmp: string;
let sn: Snapshotter;
beforeAll(async () => {
  tmp = mkdtempSync(`${tmpdir()}/berth-unpack-`);
  sn = await openSnapshotter(tmp, 'overlayfs');
});
afterAll(async () => {
  await sn.close();
  rmSync(tmp, { recursive: true, force: true });
});

async function layers(n: number, salt = '') {
  const out = [];
  for (let i = 0; i < n; i++)
    out.push(compressLayer(await makeLayerTar([{ type: 'file', name: `f${i}`, content: `layer ${i}${salt}` }]), i % 2 ? 'zstd' : 'gzip'));
  return out;
}
const descs = (ls: Awaited<ReturnType<typeof layers>>) => ls.map((l) => ({ mediaType: l.mediaType, digest: l.digest, size: l.size }));
const opener = (ls: Awaited<ReturnType<typeof layers>>) => async (d: { digest: string }) => Readable.from([ls.find((l) => l.digest === d.digest)!.blob]);

async function keys() {
  const out = [];
  for await (const s of sn.walk()) out.push(`${s.kind}:${s.key}`);
  return out.sort();
}

describe('unpackImage', () => {
  it('refuses a layer count that differs from the diff_id count', async () => {
    const ls = await layers(2);
    const err = await unpackImage({
      layers: descs(ls),
      diffIds: [ls[0]!.diffId],
      snapshotter: sn,
      signal: AbortSignal.timeout(10_000),
      open: opener(ls),
    }).catch((e) => e);
    expect(err.kind).toBe('InvalidArgument');
    expect(err.message).toMatch(/2 layers but 1 diff_ids/);
  });

  it('discards the snapshot of a layer whose diff_id does not match, naming the layer', async () => {
    const ls = await layers(2);
    const bad = [ls[0]!.diffId, `sha256:${'1'.repeat(64)}`];
    const err = await unpackImage({ layers: descs(ls), diffIds: bad, snapshotter: sn, signal: AbortSignal.timeout(10_000), open: opener(ls) }).catch((e) => e);
    expect(err.kind).toBe('Corrupt');
    expect(err.message).toContain(ls[1]!.digest);
    expect(err.message).toMatch(/wrong diff id/);
    // Layer 0 was good and stays committed; nothing of layer 1 is left.
    expect(await keys()).toEqual([`committed:${ls[0]!.diffId}`]);
    expect(readdirSync(`${sn.root}/snapshots`).length).toBe(1);
  });

  it('skips layers whose chain ID exists, and applies the rest on top', async () => {
    const ls = await layers(4);
    const events: LayerEvent[] = [];
    const first = await unpackImage({
      layers: descs(ls).slice(0, 2),
      diffIds: ls.slice(0, 2).map((l) => l.diffId),
      snapshotter: sn,
      signal: AbortSignal.timeout(10_000),
      open: opener(ls),
    });
    const opened: string[] = [];
    const chain = await unpackImage({
      layers: descs(ls),
      diffIds: ls.map((l) => l.diffId),
      snapshotter: sn,
      signal: AbortSignal.timeout(10_000),
      parallelism: 3,
      open: async (d) => {
        opened.push(d.digest);
        return opener(ls)(d);
      },
      onLayer: (e) => events.push(e),
    });
    expect(chain).toEqual(chainIds(ls.map((l) => l.diffId)));
    expect(chain.slice(0, 2)).toEqual(first);
    expect(opened.sort()).toEqual([ls[2]!.digest, ls[3]!.digest].sort());
    expect(events.map((e) => `${e.index}:${e.state}`)).toEqual(['0:exists', '1:exists', '2:applied', '3:applied']);
    for (const [i, id] of chain.entries()) expect((await sn.stat(id)).parent).toBe(i === 0 ? undefined : chain[i - 1]);
  });

  it('applies on worker threads from blob files, with errors keeping their kind', async () => {
    const ls = await layers(2, 'worker');
    const dir = `${tmp}/blobs-worker`;
    mkdirSync(dir, { recursive: true });
    for (const l of ls) writeFileSync(`${dir}/${l.digest.slice(7)}`, l.blob);
    const warnings: string[] = [];
    const chain = await unpackImage({
      layers: descs(ls),
      diffIds: ls.map((l) => l.diffId),
      snapshotter: sn,
      signal: AbortSignal.timeout(20_000),
      parallelism: 2,
      open: async () => {
        throw new Error('open must not be used when openSource is given');
      },
      openSource: async (d) => ({ kind: 'file', path: `${dir}/${d.digest.slice(7)}` }),
      workerMinBytes: 0,
      warn: (m) => warnings.push(m),
    });
    expect(chain).toEqual(chainIds(ls.map((l) => l.diffId)));
    expect((await sn.stat(chain[1]!)).parent).toBe(chain[0]);
    const bad = await layers(1, 'worker-bad');
    writeFileSync(`${dir}/${bad[0]!.digest.slice(7)}`, bad[0]!.blob);
    const err = await unpackImage({
      layers: descs(bad),
      diffIds: [`sha256:${'2'.repeat(64)}`],
      snapshotter: sn,
      signal: AbortSignal.timeout(20_000),
      open: opener(bad),
      openSource: async (d) => ({ kind: 'file', path: `${dir}/${d.digest.slice(7)}` }),
      workerMinBytes: 0,
    }).catch((e) => e);
    expect(err.kind).toBe('Corrupt');
    expect(err.message).toMatch(/wrong diff id/);
    expect((await keys()).filter((k) => k.startsWith('active:'))).toEqual([]);
  });

  it('commits the usage the native helper measured, equal to a walk of the snapshot', async () => {
    const own = await openSnapshotter(`${tmp}/usage`, 'overlayfs');
    try {
      const l = compressLayer(
        await makeLayerTar([
          { type: 'dir', name: 'd' },
          { type: 'file', name: 'd/big', content: Buffer.alloc(300_000, 7) },
          { type: 'link', name: 'd/big-too', target: 'd/big' },
          { type: 'symlink', name: 'd/link', target: 'big' },
          { type: 'whiteout', name: 'gone' },
        ]),
        'gzip',
      );
      const [chain] = await unpackImage({
        layers: descs([l]),
        diffIds: [l.diffId],
        snapshotter: own,
        signal: AbortSignal.timeout(20_000),
        applier: await selectLayerApplier('native', HELPER_CACHE),
        open: opener([l]),
      });
      const info = await own.stat(chain!);
      const mounts = await own.peekMounts(chain!);
      const dir = mounts[0]!.type === 'bind' ? mounts[0]!.source : mounts[0]!.options[0]!.slice('lowerdir='.length);
      const walked = await diskUsage(dir);
      expect(walked.inodes).toBe(5); // the root, d, big (two names), link, the whiteout
      expect(await own.usage(chain!)).toEqual(walked);
      expect(info.kind).toBe('committed');
    } finally {
      await own.close();
    }
  });

  it('stops on abort and leaves no active snapshot behind', async () => {
    const ls = await layers(3, 'abort');
    const ac = new AbortController();
    const err = await unpackImage({
      layers: descs(ls),
      diffIds: ls.map((l) => l.diffId),
      snapshotter: sn,
      signal: ac.signal,
      open: async (d) => {
        ac.abort();
        return opener(ls)(d);
      },
    }).catch((e) => e);
    expect(err).toBeInstanceOf(Error);
    expect((await keys()).filter((k) => k.startsWith('active:'))).toEqual([]);
  });
});
