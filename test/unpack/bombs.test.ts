/**
 * Issue 8, item 2: decompression bombs. A layer is applied before its diff_id can be checked, so
 * a small blob that inflates past a bound (uncompressed bytes, entries, one PAX/GNU header, the
 * free space of the snapshotter's filesystem) must fail with ResourceExhausted naming the layer,
 * on the main thread, on worker threads and in the native helper alike, through the real
 * snapshotters, and leave no snapshot behind but the ones committed before.
 */
import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readdirSync, rmSync, statfsSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { Readable } from 'node:stream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { configFromObject } from '../../src/config/config.ts';
import { applyLimitsFromConfig, DEFAULT_APPLY_LIMITS, type ApplyLimits } from '../../src/diff/limits.ts';
import { selectLayerApplier } from '../../src/diff/layer-applier.ts';
import { unpackImage } from '../../src/images/unpack.ts';
import { openSnapshotter } from '../../src/snapshots/select.ts';
import type { Snapshotter } from '../../src/snapshots/snapshotter.ts';
import { HELPER_CACHE } from '../helpers/apply-paths.ts';
import { compressLayer, makeLayerTar, type LayerEntry } from '../helpers/layers.ts';

const MiB = 1024 * 1024;
let tmp: string;
beforeAll(() => {
  if (process.getuid?.() !== 0) throw new Error('test/unpack needs root (overlay and tmpfs mounts, lchown)');
  tmp = mkdtempSync(`${tmpdir()}/berth-bombs-`);
});
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

type Layer = ReturnType<typeof compressLayer>;
const layer = async (entries: LayerEntry[]) => compressLayer(await makeLayerTar(entries), 'gzip');

/** Where a layer is applied: in berth's thread, on a worker thread, or by the native helper (both reading the blob's file). */
type How = 'thread' | 'worker' | 'helper';
const HOWS = ['thread', 'worker', 'helper'] as const;

/** Unpack `l` on top of nothing, `how` says by what. */
async function unpack(sn: Snapshotter, l: Layer, how: How, limits?: Partial<ApplyLimits>) {
  const blobs = `${tmp}/blobs`;
  mkdirSync(blobs, { recursive: true });
  writeFileSync(`${blobs}/${l.digest.slice(7)}`, l.blob);
  return unpackImage({
    layers: [{ mediaType: l.mediaType, digest: l.digest, size: l.size }],
    diffIds: [l.diffId],
    snapshotter: sn,
    signal: AbortSignal.timeout(60_000),
    open: async () => Readable.from([l.blob]),
    openSource: how !== 'thread' ? async (d) => ({ kind: 'file', path: `${blobs}/${d.digest.slice(7)}` }) : undefined,
    workerMinBytes: 0,
    applier: await selectLayerApplier(how === 'helper' ? 'native' : 'js', HELPER_CACHE),
    limits,
  });
}

/** Applies a benign layer first, then expects `bomb` to fail and to leave exactly what was there. */
async function expectRefused(root: string, kind: 'native' | 'overlayfs', how: How, bomb: Layer, limits: Partial<ApplyLimits> | undefined, message: RegExp) {
  const sn = await openSnapshotter(root, kind);
  try {
    const [committed] = await unpack(sn, await layer([{ type: 'file', name: 'keep', content: `keep ${root}` }]), how, limits);
    const before = readdirSync(`${sn.root}/snapshots`).sort();
    const err = await unpack(sn, bomb, how, limits).catch((e) => e);
    expect(err.kind, String(err?.stack)).toBe('ResourceExhausted');
    expect(err.message).toContain(bomb.digest);
    expect(err.message).toMatch(message);
    expect(readdirSync(`${sn.root}/snapshots`).sort()).toEqual(before);
    const keys: string[] = [];
    for await (const s of sn.walk()) keys.push(`${s.kind}:${s.key}`);
    expect(keys).toEqual([`committed:${committed}`]);
  } finally {
    await sn.close();
  }
}

describe('decompression bombs', () => {
  let zeros: Layer;
  let manyEntries: Layer;
  let bigPax: Layer;
  let bigGnuName: Layer;
  beforeAll(async () => {
    zeros = await layer([{ type: 'file', name: 'zeros', content: Buffer.alloc(64 * MiB) }]);
    manyEntries = await layer(Array.from({ length: 3000 }, (_, i): LayerEntry => ({ type: 'file', name: `f${i}` })));
    bigPax = await layer([{ type: 'file', name: 'x', content: 'x', xattrs: { 'user.big': Buffer.alloc(2 * MiB, 1) } }]);
    bigGnuName = await layer([{ type: 'file', name: 'd/'.repeat(MiB) + 'f', gnuLongName: true }]);
    // The bombs are small: what is refused is what they inflate to.
    expect(zeros.size).toBeLessThan(MiB);
  });

  for (const kind of ['native', 'overlayfs'] as const) {
    for (const how of HOWS) {
      it(`refuses more uncompressed bytes than the limit (${kind}, ${how})`, async () => {
        await expectRefused(mkdtempSync(`${tmp}/${kind}-`), kind, how, zeros, { layerBytes: 8 * MiB }, /more than 8\.0 MiB uncompressed/);
      });
      it(`refuses more entries than the limit (${kind}, ${how})`, async () => {
        await expectRefused(mkdtempSync(`${tmp}/${kind}-`), kind, how, manyEntries, { entries: 1000 }, /more than 1000 entries/);
      });
    }
    it(`refuses a PAX header and a GNU long name over 1 MiB by default (${kind})`, async () => {
      await expectRefused(mkdtempSync(`${tmp}/${kind}-`), kind, 'thread', bigPax, undefined, /pax-header header of 2\.0 MiB is over the limit of 1\.0 MiB/);
      await expectRefused(mkdtempSync(`${tmp}/${kind}-`), kind, 'worker', bigGnuName, undefined, /gnu-long-path header of 2\.0 MiB is over the limit/);
      await expectRefused(mkdtempSync(`${tmp}/${kind}-`), kind, 'helper', bigPax, undefined, /pax-header header of 2\.0 MiB is over the limit of 1\.0 MiB/);
      await expectRefused(mkdtempSync(`${tmp}/${kind}-`), kind, 'helper', bigGnuName, undefined, /gnu-long-path header of 2\.0 MiB is over the limit/);
    });
  }

  it('refuses more names and extended attributes than it keeps in memory (native, worker)', async () => {
    const names = await layer(Array.from({ length: 100 }, (_, i): LayerEntry => ({ type: 'file', name: `${'n'.repeat(200)}${i}` })));
    await expectRefused(
      mkdtempSync(`${tmp}/held-`),
      'native',
      'worker',
      names,
      { heldBytes: 10 * 1024 },
      /more than 10\.0 KiB of names and extended attributes/,
    );
    const xattrs = await layer(Array.from({ length: 20 }, (_, i): LayerEntry => ({ type: 'file', name: `f${i}`, xattrs: { 'user.k': Buffer.alloc(1024) } })));
    await expectRefused(
      mkdtempSync(`${tmp}/held-`),
      'native',
      'thread',
      xattrs,
      { heldBytes: 8 * 1024 },
      /more than 8\.0 KiB of names and extended attributes/,
    );
    await expectRefused(
      mkdtempSync(`${tmp}/held-`),
      'overlayfs',
      'helper',
      xattrs,
      { heldBytes: 8 * 1024 },
      /more than 8\.0 KiB of names and extended attributes/,
    );
  });

  it('is not applied a second time from the stored blob when applied while downloading', async () => {
    const sn = await openSnapshotter(mkdtempSync(`${tmp}/spec-`), 'overlayfs');
    try {
      const attempts: number[] = [];
      const err = await unpackImage({
        layers: [{ mediaType: zeros.mediaType, digest: zeros.digest, size: zeros.size }],
        diffIds: [zeros.diffId],
        snapshotter: sn,
        signal: AbortSignal.timeout(60_000),
        speculative: true,
        open: async (_d, _s, attempt) => {
          attempts.push(attempt);
          return Readable.from([zeros.blob]);
        },
        limits: { layerBytes: 8 * MiB },
      }).catch((e) => e);
      expect(err.kind).toBe('ResourceExhausted');
      expect(attempts).toEqual([0]);
    } finally {
      await sn.close();
    }
  });

  describe('on a small filesystem', () => {
    let mnt: string;
    beforeAll(() => {
      mnt = mkdtempSync(`${tmp}/tmpfs-`);
      execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=96m', 'tmpfs', mnt]);
    });
    afterAll(() => {
      execFileSync('umount', [mnt]);
    });

    for (const kind of ['native', 'overlayfs'] as const) {
      for (const how of HOWS) {
        it(`stops when the free space falls below the reserve, and gives it back (${kind}, ${how})`, async () => {
          const root = mkdtempSync(`${mnt}/${kind}-`);
          const free = () => statfsSync(mnt).bavail * statfsSync(mnt).bsize;
          const before = free();
          // 64 MiB would fit in the 96 MiB filesystem, but not with 48 MiB kept free.
          await expectRefused(
            root,
            kind,
            how,
            zeros,
            { reserveBytes: 48 * MiB, checkEveryBytes: 4 * MiB },
            /the disk is nearly full: .* below the reserve of 48\.0 MiB/,
          );
          expect(free()).toBeGreaterThan(before - 4 * MiB);
          rmSync(root, { recursive: true, force: true });
        });
      }
    }
  });
});

describe('the [unpack] config', () => {
  it('raises or lowers the bounds, with defaults matching the built-in ones', () => {
    const { checkEveryBytes: _every, heldBytes: _held, ...defaults } = DEFAULT_APPLY_LIMITS;
    expect(applyLimitsFromConfig(configFromObject({}))).toEqual(defaults);
    const c = configFromObject({ unpack: { max_layer_size: '64Gi', max_layer_entries: 5_000_000, max_header_size: '4Mi' }, gc: { reserve: '1Gi' } });
    expect(applyLimitsFromConfig(c)).toEqual({ layerBytes: 64 * 1024 * MiB, entries: 5_000_000, headerBytes: 4 * MiB, reserveBytes: 1024 * MiB });
  });

  it('refuses an unknown key or a bound below one, naming the key', () => {
    const bad = (unpack: object) => {
      try {
        configFromObject({ unpack }, 'c.toml');
      } catch (err) {
        return err as { kind: string; message: string };
      }
      throw new Error('accepted');
    };
    expect(bad({ max_layer_bytes: 1 })).toMatchObject({ kind: 'InvalidArgument', message: 'c.toml: unknown key "unpack.max_layer_bytes"' });
    expect(bad({ max_layer_entries: 0 }).message).toMatch(/^c\.toml: key "unpack\.max_layer_entries" must be >= 1/);
    expect(bad({ max_header_size: 'lots' }).message).toMatch(/unpack\.max_header_size/);
  });
});
