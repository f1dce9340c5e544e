/**
 * The bounds of src/diff/limits.ts on every apply path, at the level of one layer (the snapshotter
 * level is test/unpack/bombs.test.ts): a small layer that inflates past a bound fails with
 * ResourceExhausted naming the layer, worded alike on every path.
 */
import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { Readable } from 'node:stream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ApplyLimits } from '../../src/diff/limits.ts';
import { APPLY_PATHS, type ApplyFn } from '../helpers/apply-paths.ts';
import { compressLayer, makeLayerTar, type LayerEntry } from '../helpers/layers.ts';

const MiB = 1024 * 1024;
let tmp: string;
beforeAll(() => {
  if (process.getuid?.() !== 0) throw new Error('test/diff needs root (lchown, tmpfs mounts)');
  tmp = mkdtempSync(`${tmpdir()}/berth-limits-`);
});
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

type Layer = ReturnType<typeof compressLayer>;
const layer = async (entries: LayerEntry[]) => compressLayer(await makeLayerTar(entries), 'gzip');

let n = 0;
async function expectRefused(apply: ApplyFn, l: Layer, limits: Partial<ApplyLimits> | undefined, message: RegExp, root = `${tmp}/r${n++}`) {
  mkdirSync(root, { recursive: true });
  const err = await apply(Readable.from([l.blob]), {
    root,
    mediaType: l.mediaType,
    whiteouts: 'overlay',
    expectedDiffId: l.diffId,
    layerDigest: l.digest,
    limits,
  }).catch((e) => e);
  expect(err.kind, String(err?.stack ?? err)).toBe('ResourceExhausted');
  expect(err.message).toContain(`layer ${l.digest}: `);
  expect(err.message).toMatch(message);
}

let zeros: Layer;
beforeAll(async () => {
  zeros = await layer([{ type: 'file', name: 'zeros', content: Buffer.alloc(64 * MiB) }]);
});

describe.each(APPLY_PATHS)('%s apply path: limits', (_path, apply) => {
  it('refuses more uncompressed bytes than the limit', async () => {
    await expectRefused(
      apply,
      zeros,
      { layerBytes: 8 * MiB },
      /: more than 8\.0 MiB uncompressed \(the limit per layer, unpack\.max_layer_size\); refusing it as a decompression bomb$/,
    );
  });

  it('refuses more entries than the limit', async () => {
    const many = await layer(Array.from({ length: 3000 }, (_, i): LayerEntry => ({ type: 'file', name: `f${i}` })));
    await expectRefused(apply, many, { entries: 1000 }, /: more than 1000 entries \(the limit per layer, unpack\.max_layer_entries\)/);
  });

  it('refuses a PAX header and a GNU long name over 1 MiB by default', async () => {
    const bigPax = await layer([{ type: 'file', name: 'x', content: 'x', xattrs: { 'user.big': Buffer.alloc(2 * MiB, 1) } }]);
    await expectRefused(apply, bigPax, undefined, /: a pax-header header of 2\.0 MiB is over the limit of 1\.0 MiB \(unpack\.max_header_size\)$/);
    const bigName = await layer([{ type: 'file', name: `${'d/'.repeat(MiB)}f`, gnuLongName: true }]);
    await expectRefused(apply, bigName, undefined, /: a gnu-long-path header of 2\.0 MiB is over the limit of 1\.0 MiB/);
  });

  it('refuses a special header over a configured bound below 1 MiB, before reading it', async () => {
    const pax = await layer([{ type: 'file', name: 'x', content: 'x', xattrs: { 'user.k': Buffer.alloc(100 * 1024, 1) } }]);
    await expectRefused(apply, pax, { headerBytes: 64 * 1024 }, /: a pax-header header of 100\.0 KiB is over the limit of 64\.0 KiB/);
  });

  it('refuses more names and extended attributes than it keeps in memory', async () => {
    const names = await layer(Array.from({ length: 100 }, (_, i): LayerEntry => ({ type: 'file', name: `${'n'.repeat(200)}${i}` })));
    await expectRefused(apply, names, { heldBytes: 10 * 1024 }, /: more than 10\.0 KiB of names and extended attributes; refusing it as a decompression bomb$/);
    const xattrs = await layer(Array.from({ length: 20 }, (_, i): LayerEntry => ({ type: 'file', name: `f${i}`, xattrs: { 'user.k': Buffer.alloc(1024) } })));
    await expectRefused(apply, xattrs, { heldBytes: 8 * 1024 }, /: more than 8\.0 KiB of names and extended attributes/);
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

    it('stops when the free space falls below the reserve', async () => {
      // 64 MiB would fit in the 96 MiB filesystem, but not with 48 MiB kept free.
      await expectRefused(
        apply,
        zeros,
        { reserveBytes: 48 * MiB, checkEveryBytes: 4 * MiB },
        /: the disk is nearly full: .* left on the filesystem of .* after .* of the layer, below the reserve of 48\.0 MiB \(gc\.reserve\)/,
        `${mnt}/root`,
      );
    });
  });
});
