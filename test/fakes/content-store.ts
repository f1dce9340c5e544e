/**
 * An in-memory content store for unit tests: blobs in a Map, verified on commit like the local
 * store (size and digest, Corrupt on a mismatch), ingests that can be listed, aborted and found
 * stale. No files, so it has no `ingestDataPath`: unpacks read committed blobs only.
 */
import { createHash } from 'node:crypto';
import { Readable } from 'node:stream';
import type { ContentStore, Info, IngestStatus, StaleIngests, Writer, WriterOptions } from '../../src/content/content.ts';
import { corrupt, notFound } from '../../src/errors.ts';

interface Ingest {
  chunks: Buffer[];
  total?: number;
  startedAt: Date;
  updatedAt: Date;
}

export class MemoryContentStore implements ContentStore, StaleIngests {
  readonly root = '/memory/content';
  private readonly blobs = new Map<string, { data: Buffer; createdAt: Date }>();
  private readonly ingests = new Map<string, Ingest>();
  private readonly now: () => number;

  constructor(opts: { now?: () => number } = {}) {
    this.now = opts.now ?? Date.now;
  }

  /** Commit `data` at once (for setting a test up); returns its digest. */
  put(data: Buffer | string): string {
    const bytes = Buffer.from(data);
    const digest = `sha256:${createHash('sha256').update(bytes).digest('hex')}`;
    if (!this.blobs.has(digest)) this.blobs.set(digest, { data: bytes, createdAt: new Date(this.now()) });
    return digest;
  }

  /** Damage a committed blob in place (a bad disk), keeping its size. */
  damage(digest: string): void {
    const b = this.blob(digest);
    const data = Buffer.from(b.data);
    data[0] = (data[0] ?? 0) ^ 0xff;
    b.data = data;
  }

  has(digest: string): boolean {
    return this.blobs.has(digest);
  }

  private blob(digest: string): { data: Buffer; createdAt: Date } {
    const b = this.blobs.get(digest);
    if (!b) throw notFound(`blob ${digest} not found`);
    return b;
  }

  async info(digest: string): Promise<Info> {
    const b = this.blob(digest);
    return { digest, size: b.data.length, createdAt: b.createdAt };
  }

  async open(digest: string, opts: { start?: number; signal?: AbortSignal } = {}): Promise<Readable> {
    return Readable.from([this.blob(digest).data.subarray(opts.start ?? 0)]);
  }

  async readBlob(digest: string): Promise<Buffer> {
    return this.blob(digest).data;
  }

  blobPath(digest: string): string {
    return `${this.root}/blobs/${digest.replace(':', '/')}`;
  }

  async *walk(): AsyncIterable<Info> {
    for (const [digest, b] of [...this.blobs]) yield { digest, size: b.data.length, createdAt: b.createdAt };
  }

  async delete(digest: string): Promise<void> {
    if (!this.blobs.delete(digest)) throw notFound(`blob ${digest} not found`);
  }

  async listIngests(): Promise<IngestStatus[]> {
    return [...this.ingests].map(([ref, i]) => ({ ref, offset: size(i.chunks), total: i.total, startedAt: i.startedAt, updatedAt: i.updatedAt }));
  }

  async abortIngest(ref: string): Promise<void> {
    if (!this.ingests.delete(ref)) throw notFound(`ingest ${ref} not found`);
  }

  async removeStaleIngests(maxAgeMs: number): Promise<string[]> {
    const stale = [...this.ingests].filter(([, i]) => this.now() - i.updatedAt.getTime() > maxAgeMs).map(([ref]) => ref);
    for (const ref of stale) this.ingests.delete(ref);
    return stale;
  }

  async writer(opts: WriterOptions): Promise<Writer> {
    const at = new Date(this.now());
    const ingest = this.ingests.get(opts.ref) ?? { chunks: [], total: opts.total, startedAt: at, updatedAt: at };
    this.ingests.set(opts.ref, ingest);
    const store = this;
    return {
      ref: opts.ref,
      get offset() {
        return size(ingest.chunks);
      },
      async write(chunk) {
        opts.signal?.throwIfAborted();
        ingest.chunks.push(Buffer.from(chunk));
        ingest.updatedAt = new Date(store.now());
      },
      async truncate() {
        ingest.chunks = [];
      },
      async commit(expectedSize, digest) {
        const data = Buffer.concat(ingest.chunks);
        store.ingests.delete(opts.ref);
        const found = `sha256:${createHash('sha256').update(data).digest('hex')}`;
        if (data.length !== expectedSize || found !== digest || (opts.expected !== undefined && opts.expected !== digest)) {
          throw corrupt(`ingest ${opts.ref}: expected ${digest} (${expectedSize} bytes), got ${found} (${data.length} bytes)`);
        }
        if (!store.blobs.has(digest)) store.blobs.set(digest, { data, createdAt: new Date(store.now()) });
      },
      async close() {},
    };
  }
}

function size(chunks: Buffer[]): number {
  return chunks.reduce((n, c) => n + c.length, 0);
}
