import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, expect, test } from 'vitest';
import { openContentStore, type LocalContentStore } from '../../src/content/local-store.ts';
import { verifyContent } from '../../src/content/verify.ts';
import { isKind } from '../../src/errors.ts';
import { collectGarbage } from '../../src/gc/collect.ts';
import { ensureFreeSpace, freeSpace } from '../../src/gc/free-space.ts';
import { Metadata } from '../../src/metadata/metadata.ts';
import { commitBlob } from '../helpers/blobs.ts';

// A real small filesystem: an 8 MiB tmpfs (needs root; fails loudly without it).
let mnt: string;
let store: LocalContentStore;
let md: Metadata;
const MiB = 1024 * 1024;

beforeAll(async () => {
  mnt = mkdtempSync(join(tmpdir(), 'berth-gc-tmpfs-'));
  execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=8m', 'tmpfs', mnt]);
  store = await openContentStore(mnt);
  md = Metadata.open(join(mnt, 'metadata.db'));
});
afterAll(() => {
  md?.close();
  try {
    execFileSync('umount', [mnt]);
  } finally {
    rmSync(mnt, { recursive: true, force: true });
  }
});

async function putBlob(bytes: Buffer): Promise<string> {
  return (await commitBlob(store, bytes)).digest;
}

const collect = () => collectGarbage({ metadata: md, content: store, snapshotters: [] });

test('fits without collecting when there is room', async () => {
  const r = await ensureFreeSpace(mnt, 1 * MiB, 1 * MiB, async () => {
    throw new Error('must not collect');
  });
  expect(r.collected).toBe(false);
  expect(r.availableBytes).toBeGreaterThan(2 * MiB);
});

test('collects garbage to make room, then a need beyond the disk is a clear ResourceExhausted with nothing corrupt', async () => {
  // 5 MiB of unreferenced blobs on the 8 MiB disk, plus one referenced blob that must survive.
  for (let i = 0; i < 5; i++) await putBlob(randomBytes(MiB));
  const keep = await putBlob(randomBytes(64 * 1024));
  md.createLease('keep');
  md.addLeaseResource('keep', { type: 'content', key: keep });
  const free = (await freeSpace(mnt)).availableBytes;
  expect(free).toBeLessThan(4 * MiB);

  const ok = await ensureFreeSpace(mnt, 4 * MiB, 1 * MiB, collect);
  expect(ok.collected).toBe(true);
  expect(ok.report!.removedBytes).toBe(5 * MiB);
  expect(ok.availableBytes).toBeGreaterThanOrEqual(5 * MiB);

  let calls = 0;
  try {
    await ensureFreeSpace(mnt, 20 * MiB, 256 * 1024, async () => {
      calls++;
      return collect();
    });
    expect.unreachable();
  } catch (err) {
    expect(isKind(err, 'ResourceExhausted')).toBe(true);
    const msg = String((err as Error).message);
    expect(msg).toContain(mnt);
    expect(msg).toContain('need 20.0 MiB + reserve 256.0 KiB = 20.3 MiB');
    expect(msg).toMatch(/\d+(\.\d)? (KiB|MiB) available after garbage collection/);
  }
  expect(calls).toBe(1);
  // Nothing corrupt: every blob still hashes to its name, the kept one is there, metadata is sound.
  const results = [];
  for await (const v of verifyContent(store)) results.push(v);
  expect(results.map((r) => r.digest)).toEqual([keep]);
  expect(results.every((r) => r.ok)).toBe(true);
  expect(md.checkIntegrity()).toEqual([]);
});
