/**
 * A daemon re-hashes blobs whose bytes may have changed. A blob removed between the store's info
 * and the read is missing (pulled again), not corrupt; a changed one is corrupt.
 */
import { chmod, mkdtemp, rm, unlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { ContentStore } from '../../src/content/content.ts';
import { openContentStore, type LocalContentStore } from '../../src/content/local-store.ts';
import { verifyBlob } from '../../src/content/verify.ts';
import { BlobChecker } from '../../src/reconcile/blob-check.ts';
import { commitBlob } from '../helpers/blobs.ts';

let root: string;
let store: LocalContentStore;
beforeEach(async () => {
  root = await mkdtemp(join(tmpdir(), 'berth-blob-check-'));
  store = await openContentStore(root);
});
afterEach(async () => {
  await rm(root, { recursive: true, force: true });
});

const put = (text: string) => commitBlob(store, text);

describe('BlobChecker with re-hashing', () => {
  it('ok when intact, corrupt when the bytes changed, missing when the blob goes away while it is read', async () => {
    const checker = new BlobChecker({ rehash: true });
    checker.beginTurn();
    const a = await put('layer a');
    expect(await checker.check(store, a.digest, a.size)).toBe('ok');

    const b = await put('layer b');
    await chmod(store.blobPath(b.digest), 0o644);
    await writeFile(store.blobPath(b.digest), 'layer x');
    expect(await checker.check(store, b.digest, b.size)).toBe('corrupt');

    const c = await put('layer c');
    // The real store, with the blob removed right after its info was read.
    const vanishing: ContentStore = Object.assign(Object.create(store), {
      info: async (digest: string) => {
        const info = await store.info(digest);
        await unlink(store.blobPath(digest));
        return info;
      },
    });
    expect(await checker.check(vanishing, c.digest, c.size)).toBe('missing');
    expect(await verifyBlob(store, c.digest, c.size)).toMatchObject({ ok: false, missing: true });
    expect(await verifyBlob(store, b.digest, b.size)).not.toHaveProperty('missing');
  });
});
