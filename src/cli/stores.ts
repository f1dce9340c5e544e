/**
 * Open what the image verbs (pull, import, images, content) work on under the berth root: the
 * content store and the metadata record. The root is made 0700, or tightened to it however it was
 * first created (the overlay probe, an older berth). Opening is start-up, so
 * stale ingests (no live writer, older than `pull.stale_ingest_age`) are removed here.
 */
import { join } from 'node:path';
import { openContentStore, type LocalContentStore } from '../content/local-store.ts';
import { Metadata } from '../metadata/metadata.ts';
import { ensurePrivateDir } from '../private-file.ts';
import type { CliContext } from './context.ts';

export interface ImageStores {
  store: LocalContentStore;
  metadata: Metadata;
  close(): void;
}

export async function openImageStores(ctx: CliContext, opts: { cleanStaleIngests?: boolean } = {}): Promise<ImageStores> {
  const root = ctx.config.root;
  ensurePrivateDir(root);
  const store = await openContentStore(root);
  if (opts.cleanStaleIngests ?? true) {
    const removed = await store.removeStaleIngests(ctx.config.pull.staleIngestAgeMs);
    if (removed.length) ctx.log.info({ refs: removed }, 'removed stale ingests');
  }
  const metadata = Metadata.open(join(root, 'metadata.db'));
  return { store, metadata, close: () => metadata.close() };
}
