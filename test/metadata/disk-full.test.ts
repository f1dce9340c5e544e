import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, unlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, expect, test } from 'vitest';
import { isKind } from '../../src/errors.ts';
import { Metadata } from '../../src/metadata/metadata.ts';

// A real full disk: a 512 KiB tmpfs (needs root; fails loudly without it).
let mnt: string;
beforeAll(() => {
  mnt = mkdtempSync(join(tmpdir(), 'berth-md-full-'));
  execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=512k', 'tmpfs', mnt]);
});
afterAll(() => {
  try {
    execFileSync('umount', [mnt]);
  } finally {
    rmSync(mnt, { recursive: true, force: true });
  }
});

test('a full disk is a ResourceExhausted error; every committed record survives, the failed one is absent', () => {
  // Stands for the blobs GC would delete: unlinking needs no space, a metadata write does.
  const filler = join(mnt, 'filler');
  writeFileSync(filler, Buffer.alloc(128 * 1024));
  const md = Metadata.open(join(mnt, 'metadata.db'));
  const pad = 'x'.repeat(8192);
  let committed = 0;
  let failure: unknown;
  for (let i = 0; i < 1000; i++) {
    try {
      md.transaction(() => {
        md.putImage({
          name: `img-${i}`,
          target: { digest: `sha256:${'a'.repeat(64)}`, mediaType: 'application/vnd.oci.image.manifest.v1+json', size: 1 },
          manifestDigest: `sha256:${'a'.repeat(64)}`,
          configDigest: `sha256:${'b'.repeat(64)}`,
          platform: 'linux/amd64',
          size: 1,
          labels: { pad },
        });
        md.createLease(`lease-${i}`, { labels: { pad } });
      });
      committed++;
    } catch (err) {
      failure = err;
      break;
    }
  }
  expect(failure, 'the disk never filled').toBeDefined();
  expect(isKind(failure, 'ResourceExhausted')).toBe(true);
  expect(String(failure)).toContain('metadata.db');
  expect(md.checkIntegrity()).toEqual([]);
  expect(md.listImages()).toHaveLength(committed);
  expect(md.listLeases()).toHaveLength(committed);
  expect(md.getImage(`img-${committed}`)).toBeUndefined();
  // Reads still work; once space is freed (GC unlinks blobs), writes and deletes work again.
  expect(md.getImage('img-0')?.name).toBe('img-0');
  unlinkSync(filler);
  for (let i = 0; i < committed; i += 2) md.transaction(() => (md.deleteImage(`img-${i}`), md.deleteLease(`lease-${i}`)));
  md.close();
  const again = Metadata.open(join(mnt, 'metadata.db'));
  expect(again.checkIntegrity()).toEqual([]);
  expect(again.listImages()).toHaveLength(Math.floor(committed / 2));
  again.close();
});
