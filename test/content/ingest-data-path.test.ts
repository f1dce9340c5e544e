/**
 * The local store says where an ingest's bytes land (unpack follows that file to apply a layer
 * while it downloads) instead of unpack building the store's ingest layout itself.
 */
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, expect, it } from 'vitest';
import { openContentStore, type LocalContentStore } from '../../src/content/local-store.ts';

let dir: string;
let store: LocalContentStore;
beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'berth-ingest-'));
  store = await openContentStore(dir);
});
afterEach(async () => rm(dir, { recursive: true, force: true }));

it("ingestDataPath names the file a writer's bytes reach before the commit", async () => {
  const w = await store.writer({ ref: 'layer-1', total: 8 });
  await w.write(Buffer.from('abcd'));
  await w.close(); // written through to the ingest, not committed
  expect((await readFile(store.ingestDataPath('layer-1'))).toString()).toBe('abcd');
  const again = await store.writer({ ref: 'layer-1', total: 8 });
  await again.write(Buffer.from('efgh'));
  await again.close();
  expect((await readFile(store.ingestDataPath('layer-1'))).toString()).toBe('abcdefgh');
});
