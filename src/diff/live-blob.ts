/**
 * Reading a layer blob while it is still being downloaded, so its apply starts with the first
 * bytes instead of after the whole download, its fsync and its commit.
 *
 * The content store writes an ingest to `ingest/<key>/data` and commits it by renaming that very
 * file into `blobs/` (src/content/local-store.ts), so one open file descriptor sees every byte,
 * before and after the commit. The reader follows the file as it grows until `size` bytes are
 * read. Anything unexpected (the file shrinks: the ingest restarted; the commit fails) is an error:
 * the bytes may be wrong, so the caller applies again from the committed blob.
 *
 * Speculative bytes are safe because nothing is committed from them unless both hold: the
 * uncompressed stream matched the config's diff_id (which names the content exactly), and the
 * blob itself was verified and committed by the content store.
 */
import { open, type FileHandle } from 'node:fs/promises';
import { Readable } from 'node:stream';
import { setTimeout as sleep } from 'node:timers/promises';
import { ifExists } from '../durable-file.ts';
import { BerthError } from '../errors.ts';

export interface FollowOptions {
  /** The ingest's `data` file (it may not exist yet). */
  dataPath: string;
  /** Where the committed blob lives. */
  blobPath: string;
  size: number;
  /** Settles when the content store committed the blob (or failed to). */
  committed: Promise<void>;
  signal?: AbortSignal;
  /** How often to look for new bytes. */
  pollMs?: number;
}

const CHUNK = 1 << 20;

export function followBlob(opts: FollowOptions): Readable {
  let state: 'pending' | 'ok' | 'failed' = 'pending';
  let failure: unknown;
  opts.committed.then(
    () => (state = 'ok'),
    (err) => {
      state = 'failed';
      failure = err;
    },
  );
  const poll = opts.pollMs ?? 10;
  async function* gen(): AsyncGenerator<Buffer> {
    let fh: FileHandle | undefined;
    try {
      fh = await openFollowed(opts);
      let pos = 0;
      // One buffer is read into until a read fills it: a read that finds few or no new bytes (the
      // apply has caught up with a slower download) yields a copy of what it found. A fresh 1 MiB
      // per read, every 10 ms poll included, made up to 100 MiB/s of garbage that V8 does not see
      // (it lives outside its heap) and no GC pacer counts.
      let buf: Buffer | undefined;
      while (pos < opts.size) {
        opts.signal?.throwIfAborted();
        buf ??= Buffer.allocUnsafe(Math.min(CHUNK, opts.size - pos));
        const { bytesRead } = await fh.read(buf, 0, Math.min(buf.length, opts.size - pos), pos);
        if (bytesRead > 0) {
          pos += bytesRead;
          const full = bytesRead === buf.length ? buf : undefined;
          if (full) buf = undefined;
          yield full ?? Buffer.from(buf!.subarray(0, bytesRead));
          continue;
        }
        if (state === 'failed') throw failure;
        const { size } = await fh.stat();
        if (size < pos) throw new BerthError('Unavailable', `ingest ${opts.dataPath} restarted while being read`, { place: { file: opts.dataPath } });
        if (state === 'ok' && size <= pos) {
          throw new BerthError('Corrupt', `blob ${opts.blobPath} is shorter (${size}) than its descriptor (${opts.size})`, { place: { file: opts.blobPath } });
        }
        await sleep(poll, undefined, { signal: opts.signal });
      }
    } finally {
      await fh?.close();
    }
  }
  return Readable.from(gen(), { objectMode: false, highWaterMark: CHUNK });
}

/**
 * The file that holds a downloading blob's bytes, once there is one: the committed blob, else the
 * ingest's data file (waited for until the download creates it). One descriptor sees every byte,
 * across the commit's rename.
 */
export async function openFollowed(opts: Omit<FollowOptions, 'size'>): Promise<FileHandle> {
  const commit: { state: 'pending' | 'ok' | 'failed'; failure?: unknown } = { state: 'pending' };
  opts.committed.then(
    () => (commit.state = 'ok'),
    (err) => Object.assign(commit, { state: 'failed', failure: err }),
  );
  for (;;) {
    opts.signal?.throwIfAborted();
    if (commit.state === 'failed') throw commit.failure;
    const fh = (await tryOpen(opts.blobPath)) ?? (commit.state === 'ok' ? undefined : await tryOpen(opts.dataPath));
    if (fh) return fh;
    if (commit.state === 'ok') throw new BerthError('NotFound', `blob ${opts.blobPath} is committed but cannot be opened`, { place: { file: opts.blobPath } });
    await sleep(opts.pollMs ?? 10, undefined, { signal: opts.signal });
  }
}

function tryOpen(path: string): Promise<FileHandle | undefined> {
  return ifExists(open(path, 'r'));
}
