/**
 * The content store on disk, in containerd's layout (plugins/content/local):
 *   <root>/io.containerd.content.v1.content/blobs/sha256/<hex>
 *   <root>/io.containerd.content.v1.content/ingest/<sha256(ref)>/{ref,startedat,updatedat,total,data}
 * plus berth's cross-process ref locks in `.../locks/<sha256(ref)>.lock` (containerd's are
 * in-process only; berth has a CLI and a daemon).
 *
 * Invariants: a file in `blobs/` has been fsynced, verified (size and digest) and renamed in with
 * the directory fsynced afterwards; it is read-only. Everything partial lives in `ingest/`.
 */
import { createHash, type Hash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { chmod, mkdir, open, readdir, readFile, rename, rm, stat, unlink, type FileHandle } from 'node:fs/promises';
import { join } from 'node:path';
import type { Readable } from 'node:stream';
import { fsyncDir, ifExists, writeFileAtomic } from '../durable-file.ts';
import { corrupt, resourceExhausted, failedPrecondition, invalidArgument, notFound } from '../errors.ts';
import { assertDigest, digestHex } from '../oci/digest.ts';
import type { ContentStore, Info, IngestStatus, StaleIngests, Writer, WriterOptions } from './content.ts';
import { acquireLock, isLocked, LOCK_TMP_SUFFIX, lockTmpIsStale, tryLock, type HeldLock } from './ref-lock.ts';

export const CONTENT_DIR = 'io.containerd.content.v1.content';

/** How often `updatedat` is rewritten while data flows (it is also written on close). */
const UPDATED_AT_INTERVAL_MS = 2000;
/** Bytes gathered before one writev to `data`. */
const WRITE_BATCH_BYTES = 1 << 20;
/** Bytes between background fdatasyncs of `data` while it grows. */
const SYNC_EVERY_BYTES = 8 << 20;

const refKey = (ref: string) => createHash('sha256').update(ref).digest('hex');

/** A full disk (or quota) is ResourceExhausted naming what was being written; other errors pass. */
function storeError(err: any, what: string): unknown {
  if (err?.code === 'ENOSPC' || err?.code === 'EDQUOT') {
    return resourceExhausted(`content store: disk full writing ${what}${err.path ? ` (${err.path})` : ''}`, { cause: err });
  }
  return err;
}

const readText = (path: string) => ifExists(readFile(path, 'utf8'));

export class LocalContentStore implements ContentStore, StaleIngests {
  readonly root: string;
  readonly blobsDir: string;
  readonly ingestDir: string;
  readonly locksDir: string;

  /** `root` is the berth root; the store lives in `<root>/io.containerd.content.v1.content`. */
  constructor(root: string) {
    this.root = join(root, CONTENT_DIR);
    this.blobsDir = join(this.root, 'blobs', 'sha256');
    this.ingestDir = join(this.root, 'ingest');
    this.locksDir = join(this.root, 'locks');
  }

  async init(): Promise<void> {
    for (const d of [this.blobsDir, this.ingestDir, this.locksDir]) await mkdir(d, { recursive: true, mode: 0o755 });
  }

  blobPath(digest: string): string {
    return join(this.blobsDir, digestHex(digest));
  }

  ingestPath(ref: string): string {
    return join(this.ingestDir, refKey(ref));
  }

  ingestDataPath(ref: string): string {
    return join(this.ingestPath(ref), 'data');
  }

  lockPath(ref: string): string {
    return join(this.locksDir, `${refKey(ref)}.lock`);
  }

  async info(digest: string): Promise<Info> {
    const st = await this.blobOp(digest, (path) => stat(path));
    return { digest, size: st.size, createdAt: st.mtime, version: `${st.ino}:${st.size}:${st.mtimeMs}:${st.ctimeMs}` };
  }

  /** `op` on the blob's file (which must not resolve to undefined); NotFound naming the digest if it is not committed. */
  private async blobOp<T>(digest: string, op: (path: string) => Promise<T>): Promise<T> {
    const out = await ifExists(op(this.blobPath(digest)));
    if (out === undefined) throw notFound(`content ${digest}: not found`);
    return out;
  }

  /** True if the blob is committed. */
  async has(digest: string): Promise<boolean> {
    return (await ifExists(stat(this.blobPath(digest)))) !== undefined;
  }

  async open(digest: string, opts: { start?: number; signal?: AbortSignal } = {}): Promise<Readable> {
    const fh = await this.blobOp(digest, (path) => open(path, 'r'));
    return fh.createReadStream({ start: opts.start ?? 0, highWaterMark: 1 << 20, signal: opts.signal } as any);
  }

  async readBlob(digest: string, signal?: AbortSignal): Promise<Buffer> {
    return this.blobOp(digest, (path) => readFile(path, { signal }));
  }

  async *walk(signal?: AbortSignal): AsyncIterable<Info> {
    const names = (await ifExists(readdir(this.blobsDir))) ?? [];
    for (const name of names.sort()) {
      signal?.throwIfAborted();
      if (!/^[a-f0-9]{64}$/.test(name)) continue;
      const st = await ifExists(stat(join(this.blobsDir, name)));
      if (st) yield { digest: `sha256:${name}`, size: st.size, createdAt: st.mtime };
    }
  }

  async delete(digest: string): Promise<void> {
    await this.blobOp(digest, (path) => unlink(path).then(() => true));
    await fsyncDir(this.blobsDir);
  }

  async listIngests(): Promise<IngestStatus[]> {
    const out: IngestStatus[] = [];
    for (const name of (await ifExists(readdir(this.ingestDir))) ?? []) {
      const st = await this.ingestStatus(join(this.ingestDir, name));
      if (st) out.push(st);
    }
    return out;
  }

  private async ingestStatus(dir: string): Promise<IngestStatus | undefined> {
    const ref = await readText(join(dir, 'ref'));
    if (ref === undefined) return undefined;
    const total = await readText(join(dir, 'total'));
    const started = await readText(join(dir, 'startedat'));
    const updated = await readText(join(dir, 'updatedat'));
    let offset = 0;
    let mtime = new Date(0);
    try {
      const st = await stat(join(dir, 'data'));
      offset = st.size;
      mtime = st.mtime;
    } catch {}
    const date = (s: string | undefined) => (s && !Number.isNaN(Date.parse(s.trim())) ? new Date(s.trim()) : mtime);
    const startedAt = date(started);
    const updatedAt = new Date(Math.max(date(updated).getTime(), mtime.getTime()));
    return { ref, offset, total: total ? Number(total) : undefined, startedAt, updatedAt };
  }

  async abortIngest(ref: string): Promise<void> {
    const lock = await tryLock(this.lockPath(ref));
    if (!lock) throw failedPrecondition(`ingest ${ref}: a live writer holds it`);
    try {
      await rm(this.ingestPath(ref), { recursive: true, force: true });
    } finally {
      await lock.release();
    }
  }

  /**
   * Remove ingests with no live writer whose last update is older than `maxAgeMs` (containerd
   * leaves these to GC after 24 h; berth does it at start-up). Also removes ingest dirs without a
   * `ref` file (left by a crash right after mkdir). Returns the refs removed.
   */
  async removeStaleIngests(maxAgeMs: number): Promise<string[]> {
    const removed: string[] = [];
    const now = Date.now();
    for (const name of (await ifExists(readdir(this.ingestDir))) ?? []) {
      const dir = join(this.ingestDir, name);
      const status = await this.ingestStatus(dir);
      const lockPath = join(this.locksDir, `${name}.lock`);
      if (await isLocked(lockPath)) continue;
      const age = status ? now - status.updatedAt.getTime() : Number.POSITIVE_INFINITY;
      if (age < maxAgeMs) continue;
      const lock = await tryLock(lockPath);
      if (!lock) continue;
      try {
        await rm(dir, { recursive: true, force: true });
        removed.push(status?.ref ?? name);
      } finally {
        await lock.release();
      }
    }
    // Lock files left by writers killed with -9 whose ingest is gone: taking and releasing the
    // lock removes them (a live owner keeps its lock).
    for (const file of await readdir(this.locksDir).catch(() => [] as string[])) {
      if (file.endsWith(LOCK_TMP_SUFFIX) && lockTmpIsStale(file)) await unlink(join(this.locksDir, file)).catch(() => {});
      if (!file.endsWith('.lock')) continue;
      const lock = await tryLock(join(this.locksDir, file));
      await lock?.release();
    }
    return removed;
  }

  async writer(opts: WriterOptions): Promise<Writer> {
    if (!opts.ref) throw invalidArgument('content writer: empty ref');
    if (opts.expected !== undefined) assertDigest(opts.expected, `ref ${opts.ref}: expected digest`);
    const lock = await acquireLock(this.lockPath(opts.ref), `ingest ${opts.ref}`, { signal: opts.signal }).catch((err) => {
      throw storeError(err, `ingest ${opts.ref}`);
    });
    try {
      return await IngestWriter.open(this, opts, lock);
    } catch (err) {
      await lock.release();
      throw storeError(err, `ingest ${opts.ref}`);
    }
  }
}

class IngestWriter implements Writer {
  readonly ref: string;
  private store: LocalContentStore;
  private dir: string;
  private fh: FileHandle;
  private hash: Hash;
  private lock: HeldLock;
  private expected?: string;
  private total?: number;
  private lastUpdate = Date.now();
  private done = false;
  private pending: Uint8Array[] = [];
  private syncing?: Promise<void>;
  private syncedAt = 0;
  private pendingBytes = 0;
  #offset: number;

  private constructor(store: LocalContentStore, opts: WriterOptions, dir: string, fh: FileHandle, hash: Hash, offset: number, lock: HeldLock) {
    this.store = store;
    this.ref = opts.ref;
    this.expected = opts.expected;
    this.total = opts.total;
    this.dir = dir;
    this.fh = fh;
    this.hash = hash;
    this.#offset = offset;
    this.lock = lock;
  }

  get offset(): number {
    return this.#offset;
  }

  static async open(store: LocalContentStore, opts: WriterOptions, lock: HeldLock): Promise<IngestWriter> {
    const dir = store.ingestPath(opts.ref);
    const dataPath = join(dir, 'data');
    const existingRef = await readText(join(dir, 'ref'));
    let resume = existingRef === opts.ref;
    if (resume && opts.total !== undefined && opts.total > 0) {
      const total = await readText(join(dir, 'total'));
      // A different expected size means a different blob behind the same ref: start over.
      if (total !== undefined && Number(total) !== opts.total) resume = false;
    }
    if (!resume) {
      await rm(dir, { recursive: true, force: true });
      await mkdir(dir, { recursive: true });
      const now = new Date().toISOString();
      // Each file fsynced, the directory once at the end (it persists every rename in it).
      const write = (name: string, text: string) => writeFileAtomic(join(dir, name), text, { syncDir: false });
      await write('startedat', now);
      await write('updatedat', now);
      if (opts.total !== undefined && opts.total > 0) await write('total', String(opts.total));
      // `ref` last: an ingest dir with a `ref` file is complete enough to resume.
      await write('ref', opts.ref);
      await fsyncDir(dir);
    }
    // A crash between the commit's chmod and its rename leaves read-only data behind: reopenable.
    if (resume) await chmod(dataPath, 0o644).catch(() => {});
    const fh = (await ifExists(open(dataPath, resume ? 'r+' : 'w+', 0o644))) ?? (await open(dataPath, 'w+', 0o644));
    const hash = createHash('sha256');
    let offset = 0;
    if (resume) {
      // Rebuild the digest state from the bytes already on disk (containerd re-hashes too).
      const size = (await fh.stat()).size;
      if (opts.total !== undefined && opts.total > 0 && size > opts.total) {
        await fh.truncate(0);
      } else {
        if (size > 0) {
          await new Promise<void>((resolve, reject) => {
            const rs = createReadStream(dataPath, { highWaterMark: 1 << 20, start: 0, end: size - 1 });
            rs.on('data', (c) => hash.update(c as Buffer));
            rs.on('end', resolve);
            rs.on('error', reject);
          });
        }
        offset = size;
      }
    }
    return new IngestWriter(store, opts, dir, fh, hash, offset, lock);
  }

  async write(chunk: Uint8Array): Promise<void> {
    if (this.done) throw failedPrecondition(`ingest ${this.ref}: writer is closed`);
    // Small network chunks are gathered and written with one writev per ~1 MiB: one thread-pool
    // round trip instead of sixteen. Bytes not yet written are simply lost in a crash; the resume
    // offset is the size of `data` on disk, and the digest state is rebuilt from it.
    this.hash.update(chunk);
    this.pending.push(chunk);
    this.pendingBytes += chunk.byteLength;
    this.#offset += chunk.byteLength;
    if (this.pendingBytes >= WRITE_BATCH_BYTES) {
      await this.flush().catch((err) => {
        throw storeError(err, `ingest ${this.ref}`);
      });
      this.startBackgroundSync();
    }
    const now = Date.now();
    if (now - this.lastUpdate > UPDATED_AT_INTERVAL_MS) {
      this.lastUpdate = now;
      // Not fsynced: a lost update only makes the ingest look older, and an fsync under heavy
      // writes can stall behind the whole journal.
      await writeFileAtomic(join(this.dir, 'updatedat'), new Date(now).toISOString(), { syncFile: false });
    }
  }

  /**
   * Every SYNC_EVERY_BYTES, start an fdatasync without waiting for it. The kernel would otherwise
   * hold the whole blob dirty in the page cache until the commit's fsync, which then stalls for the
   * time it takes to write all of it; syncing along the way overlaps the disk with the network.
   */
  private startBackgroundSync(): void {
    if (this.syncing || this.#offset - this.syncedAt < SYNC_EVERY_BYTES) return;
    this.syncedAt = this.#offset;
    this.syncing = this.fh
      .datasync()
      .catch(() => {})
      .finally(() => {
        this.syncing = undefined;
      });
  }

  /** Write the gathered chunks at the end of `data`. */
  private async flush(): Promise<void> {
    if (this.pendingBytes === 0) return;
    let chunks = this.pending;
    let position = this.#offset - this.pendingBytes;
    this.pending = [];
    this.pendingBytes = 0;
    while (chunks.length > 0) {
      const { bytesWritten } = await this.fh.writev(chunks as NodeJS.ArrayBufferView[], position);
      position += bytesWritten;
      // A short write (rare: a full disk raises an error instead) continues with what is left.
      let skip = bytesWritten;
      while (chunks.length > 0 && skip >= chunks[0]!.byteLength) skip -= chunks.shift()!.byteLength;
      if (skip > 0) chunks = [chunks[0]!.subarray(skip), ...chunks.slice(1)];
    }
  }

  async truncate(): Promise<void> {
    this.pending = [];
    this.pendingBytes = 0;
    await this.fh.truncate(0);
    this.hash = createHash('sha256');
    this.#offset = 0;
  }

  async commit(size: number, digest: string): Promise<void> {
    if (this.done) throw failedPrecondition(`ingest ${this.ref}: writer is closed`);
    assertDigest(digest, `ref ${this.ref}: commit digest`);
    if (this.expected !== undefined && this.expected !== digest) {
      throw invalidArgument(`ingest ${this.ref}: commit digest ${digest} differs from the expected ${this.expected}`);
    }
    try {
      await this.flush();
      await this.syncing;
      await this.fh.sync();
      if (this.#offset !== size) {
        throw corrupt(`ingest ${this.ref}: size mismatch for ${digest}: expected ${size} bytes, got ${this.#offset}`);
      }
      const found = `sha256:${this.hash.digest('hex')}`;
      if (found !== digest) {
        throw corrupt(`ingest ${this.ref}: digest mismatch: expected ${digest}, found ${found}; nothing committed`);
      }
      const target = this.store.blobPath(digest);
      if (await this.store.has(digest)) {
        await this.cleanup();
        return;
      }
      // Read-only before it becomes visible: a committed blob is never writable.
      await this.fh.chmod(0o444);
      await this.fh.close();
      await rename(join(this.dir, 'data'), target);
      await fsyncDir(this.store.blobsDir);
      await this.cleanup();
    } catch (err: any) {
      if (err?.kind === 'Corrupt') await this.cleanup();
      else await this.close();
      throw storeError(err, `ingest ${this.ref}`);
    }
  }

  private async cleanup(): Promise<void> {
    await this.fh.close().catch(() => {});
    await rm(this.dir, { recursive: true, force: true });
    this.done = true;
    await this.lock.release();
  }

  async close(): Promise<void> {
    if (this.done) return;
    this.done = true;
    try {
      await this.flush().catch(() => {});
      await this.syncing;
      await this.fh.close().catch(() => {});
      await writeFileAtomic(join(this.dir, 'updatedat'), new Date().toISOString(), { syncDir: false }).catch(() => {});
    } finally {
      await this.lock.release();
    }
  }
}

/** Open (creating its directories) the content store under the berth root. */
export async function openContentStore(root: string): Promise<LocalContentStore> {
  const store = new LocalContentStore(root);
  await store.init();
  return store;
}
