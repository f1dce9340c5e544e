/**
 * The bounds of src/diff/limits.ts on every apply path, at the level of one layer, for what
 * test/unpack/bombs.test.ts (every bound, through the snapshotters, on every path) does not show:
 * the whole wording of each refusal, and a special header refused below libarchive's own 1 MiB
 * bound, which only the native helper's reading of the stream enforces.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { Readable } from 'node:stream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ApplyLimits } from '../../src/diff/limits.ts';
import { APPLY_PATHS, type ApplyFn } from '../helpers/apply-paths.ts';
import { compressLayer, makeLayerTar, type LayerEntry } from '../helpers/layers.ts';

let tmp: string;
beforeAll(() => {
  if (process.getuid?.() !== 0) throw new Error('test/diff needs root (lchown)');
  tmp = mkdtempSync(`${tmpdir()}/berth-limits-`);
});
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

/** The message of the refusal of a layer of `entries`, which must be ResourceExhausted naming the layer. */
async function refusal(apply: ApplyFn, entries: LayerEntry[], limits?: Partial<ApplyLimits>): Promise<string> {
  const l = compressLayer(await makeLayerTar(entries), 'gzip');
  const err = await apply(Readable.from([l.blob]), {
    root: mkdtempSync(`${tmp}/r`),
    mediaType: l.mediaType,
    whiteouts: 'overlay',
    expectedDiffId: l.diffId,
    layerDigest: l.digest,
    limits,
  }).catch((e) => e);
  expect(err.kind, String(err?.stack ?? err)).toBe('ResourceExhausted');
  expect(err.message.startsWith(`layer ${l.digest}: `)).toBe(true);
  return err.message.slice(`layer ${l.digest}: `.length);
}

const KiB = 1024;

describe.each(APPLY_PATHS)('%s apply path: limits', (_path, apply) => {
  it('words each refusal as LayerBudget does', async () => {
    expect(await refusal(apply, [{ type: 'file', name: 'zeros', content: Buffer.alloc(64 * KiB) }], { layerBytes: 16 * KiB })).toBe(
      'more than 16.0 KiB uncompressed (the limit per layer, unpack.max_layer_size); refusing it as a decompression bomb',
    );
    expect(
      await refusal(
        apply,
        [
          { type: 'dir', name: 'a' },
          { type: 'dir', name: 'b' },
        ],
        { entries: 1 },
      ),
    ).toBe('more than 1 entries (the limit per layer, unpack.max_layer_entries); refusing it as a decompression bomb');
    expect(await refusal(apply, [{ type: 'file', name: 'n'.repeat(200) }], { heldBytes: 100 })).toBe(
      'more than 100 B of names and extended attributes; refusing it as a decompression bomb',
    );
  });

  it('refuses a special header over a configured bound below 1 MiB, before reading it', async () => {
    const entries: LayerEntry[] = [{ type: 'file', name: 'x', content: 'x', xattrs: { 'user.k': Buffer.alloc(100 * KiB, 1) } }];
    expect(await refusal(apply, entries, { headerBytes: 64 * KiB })).toBe(
      'a pax-header header of 100.0 KiB is over the limit of 64.0 KiB (unpack.max_header_size)',
    );
  });
});
