/**
 * The content store's interfaces, after containerd's core/content/content.go. Blobs are addressed
 * by digest (`sha256:<hex>`) and laid out exactly as containerd does under the berth root:
 *   io.containerd.content.v1.content/blobs/sha256/<hex>            committed, verified, read-only
 *   io.containerd.content.v1.content/ingest/<sha256(ref)>/{ref,startedat,updatedat,total,data}
 *
 * A `Provider` reads committed blobs; an `Ingester` hands out resumable `Writer`s. A blob enters
 * `blobs/` only after its size and digest are verified, by an atomic rename with the data and the
 * directory fsynced.
 */
import type { Readable } from 'node:stream';

export interface Info {
  digest: string;
  size: number;
  createdAt: Date;
  /**
   * Changes whenever the stored bytes may have changed (the local store: inode, size and times of
   * the file), so a checker can re-hash only what changed since it last hashed clean.
   */
  version?: string;
}

/** An ingest in progress (or abandoned): what `ctr content active` shows. */
export interface IngestStatus {
  ref: string;
  /** Bytes already in `data`. */
  offset: number;
  /** Expected size, if known. */
  total?: number;
  startedAt: Date;
  updatedAt: Date;
}

export interface Provider {
  /** NotFound if the blob is not committed. */
  info(digest: string): Promise<Info>;
  /** A stream of the committed blob (optionally from an offset). NotFound if absent. */
  open(digest: string, opts?: { start?: number; signal?: AbortSignal }): Promise<Readable>;
  /** The whole blob in memory: for manifests, indexes and configs, never layers. */
  readBlob(digest: string, signal?: AbortSignal): Promise<Buffer>;
  /** Absolute path of the committed blob file (whether or not it exists). */
  blobPath(digest: string): string;
}

export interface WriterOptions {
  /** Identifies the ingest; the same ref resumes the same partial data. */
  ref: string;
  /** Expected digest; commit fails (Corrupt, naming ref, expected and found) on a mismatch. */
  expected?: string;
  /** Expected size, if known. */
  total?: number;
  signal?: AbortSignal;
}

export interface Writer {
  readonly ref: string;
  /**
   * Bytes accepted so far, including those resumed from a previous process. Writes may be
   * gathered before they reach `data` (the local store batches ~1 MiB); after a crash, what
   * resumes is what reached the disk.
   */
  readonly offset: number;
  write(chunk: Uint8Array): Promise<void>;
  /** Drop the partial data and start again at offset 0 (e.g. the server ignored a Range request). */
  truncate(): Promise<void>;
  /**
   * Verify size and digest, then move into `blobs/` atomically. A blob that already exists is
   * not an error (the ingest is removed). Mismatch: Corrupt error, nothing committed, ingest removed.
   */
  commit(size: number, digest: string): Promise<void>;
  /** Release the writer (and its cross-process lock) without committing; the ingest stays for resume. */
  close(): Promise<void>;
}

export interface Ingester {
  /**
   * Open (or resume) the ingest for `opts.ref`. Holds a lock on the ref across processes until
   * commit or close; a second writer for the same ref waits (or gets Unavailable on abort).
   */
  writer(opts: WriterOptions): Promise<Writer>;
}

export interface ContentStore extends Provider, Ingester {
  readonly root: string;
  walk(signal?: AbortSignal): AsyncIterable<Info>;
  /** Remove a committed blob. NotFound if absent. */
  delete(digest: string): Promise<void>;
  listIngests(): Promise<IngestStatus[]>;
  /** Remove an ingest (no live writer). */
  abortIngest(ref: string): Promise<void>;
  /**
   * The file an ingest's bytes land in as they are written, for a reader that follows a download
   * (an unpack applying a layer while it arrives). A store whose ingests are not files leaves it out.
   */
  ingestDataPath?(ref: string): string;
}

/** Start-up recovery's part of a store: drop ingests nobody wrote to for `maxAgeMs`; returns their refs. */
export interface StaleIngests {
  removeStaleIngests(maxAgeMs: number): Promise<string[]>;
}
