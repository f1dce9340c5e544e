/**
 * A content store view that puts everything written through it under a lease *before* it lands:
 * the ingest when a writer opens, the blob just before its commit renames it into `blobs/`. So a
 * garbage collection running at the same time can never sweep a blob that is committed but not yet
 * referenced by an image record (used by import, whose digests are only known while reading).
 */
import type { ContentStore, Writer, WriterOptions } from '../content/content.ts';
import type { WorkLease } from './work-lease.ts';

export function leasedStore(store: ContentStore, lease: WorkLease): ContentStore {
  const protect = (type: 'content' | 'ingest', key: string) => lease.add({ type, key });
  return {
    root: store.root,
    info: (digest) => store.info(digest),
    open: (digest, o) => store.open(digest, o),
    readBlob: (digest, signal) => store.readBlob(digest, signal),
    blobPath: (digest) => store.blobPath(digest),
    walk: (signal) => store.walk(signal),
    delete: (digest) => store.delete(digest),
    listIngests: () => store.listIngests(),
    abortIngest: (ref) => store.abortIngest(ref),
    writer: (opts) => leasedWriter(store, opts, protect),
  };
}

async function leasedWriter(store: ContentStore, opts: WriterOptions, protect: (type: 'content' | 'ingest', key: string) => void): Promise<Writer> {
  protect('ingest', opts.ref);
  if (opts.expected) protect('content', opts.expected);
  const w = await store.writer(opts);
  return {
    get ref() {
      return w.ref;
    },
    get offset() {
      return w.offset;
    },
    write: (chunk) => w.write(chunk),
    truncate: () => w.truncate(),
    commit: async (size, digest) => {
      protect('content', digest);
      await w.commit(size, digest);
    },
    close: () => w.close(),
  };
}
