/**
 * Reading a container's log files: `log` (current) and `log.1` … `log.N-1` (older), as berth-shim
 * rotates them. `tail` reads the last lines across files; `follow` keeps reading `log` and, when the
 * shim rotates it (the path points to a new inode), drains the old file before opening the new one.
 */
import { open, stat, type FileHandle } from 'node:fs/promises';
import path from 'node:path';
import { LOG_FILE } from './state.ts';

/** The log files of a container dir that exist, oldest first. */
export async function logFiles(containerDir: string, maxFiles = 100): Promise<string[]> {
  const out: string[] = [];
  for (let i = maxFiles - 1; i >= 0; i--) {
    const f = path.join(containerDir, i === 0 ? LOG_FILE : `${LOG_FILE}.${i}`);
    try {
      await stat(f);
      out.push(f);
    } catch {}
  }
  return out;
}

/** The last `lines` lines (all when undefined) of the container's logs, across rotated files. */
export async function readLogTail(containerDir: string, lines?: number): Promise<Buffer> {
  return (await readLogTailAt(containerDir, lines)).data;
}

/**
 * Like readLogTail, and also the size of `log` when it was read: following from that offset
 * continues exactly where the tail ended (no line twice, none lost).
 */
export async function readLogTailAt(containerDir: string, lines?: number): Promise<{ data: Buffer; logOffset: number }> {
  const files = (await logFiles(containerDir)).reverse(); // newest first
  const chunks: Buffer[] = [];
  let newlines = 0;
  let logOffset = 0;
  const done = (data: Buffer) => ({ data, logOffset });
  for (const f of files) {
    const fh = await open(f, 'r');
    try {
      let pos = (await fh.stat()).size;
      if (path.basename(f) === LOG_FILE) logOffset = pos;
      while (pos > 0) {
        const len = Math.min(64 * 1024, pos);
        pos -= len;
        const buf = Buffer.alloc(len);
        await fh.read(buf, 0, len, pos);
        chunks.unshift(buf);
        if (lines !== undefined) {
          for (const b of buf) if (b === 10) newlines++;
          // One more newline than wanted: the line before the first one we keep is complete.
          if (newlines > lines) return done(cutToLastLines(Buffer.concat(chunks), lines));
        }
      }
    } finally {
      await fh.close();
    }
  }
  const all = Buffer.concat(chunks);
  return done(lines === undefined ? all : cutToLastLines(all, lines));
}

function cutToLastLines(buf: Buffer, lines: number): Buffer {
  if (lines <= 0) return Buffer.alloc(0);
  let end = buf.length;
  if (end > 0 && buf[end - 1] === 10) end--; // a trailing newline ends the last line, it does not start one
  let i = end;
  for (let n = 0; n < lines; n++) {
    const j = buf.lastIndexOf(10, i - 1);
    if (j < 0) return buf;
    i = j;
    if (n === lines - 1) return buf.subarray(j + 1);
  }
  return buf;
}

/**
 * Every byte of the container's logs, oldest file first, streamed (never the whole history in
 * memory). `offset()` then says how much of `log` was read, to follow on from there.
 */
export function readLogAll(containerDir: string): { chunks: AsyncGenerator<Buffer>; offset: () => number } {
  let logOffset = 0;
  async function* gen(): AsyncGenerator<Buffer> {
    for (const f of await logFiles(containerDir)) {
      let fh: FileHandle;
      try {
        fh = await open(f, 'r');
      } catch {
        continue; // rotated away meanwhile
      }
      try {
        const end = (await fh.stat()).size; // only what was there: the rest is for follow
        const isCurrent = path.basename(f) === LOG_FILE;
        const buf = Buffer.alloc(64 * 1024);
        for (let pos = 0; pos < end; ) {
          const { bytesRead } = await fh.read(buf, 0, Math.min(buf.length, end - pos), pos);
          if (bytesRead === 0) break;
          pos += bytesRead;
          if (isCurrent) logOffset = pos;
          yield Buffer.from(buf.subarray(0, bytesRead));
        }
      } finally {
        await fh.close();
      }
    }
  }
  return { chunks: gen(), offset: () => logOffset };
}

/** The rotated files newer than the one with inode `ino` (log.(k-1) … log.1 when it is log.k), oldest first. */
async function filesAfter(containerDir: string, ino: number): Promise<string[]> {
  const files = await logFiles(containerDir); // oldest first, `log` last
  const i = (await Promise.all(files.map((f) => stat(f).then((s) => s.ino, () => -1)))).indexOf(ino);
  return i < 0 ? [] : files.slice(i + 1, -1);
}

export interface FollowOptions {
  signal?: AbortSignal;
  /** Start reading `log` at this byte offset; default: its current end. */
  fromOffset?: number;
  pollMs?: number;
  /** Checked when caught up; true ends the follow (e.g. the task exited and its log is drained). */
  done?: () => Promise<boolean>;
}

/** Yield `fh`'s bytes from `pos` to its current end (through `buf`); returns the new position. */
async function* drainFrom(fh: FileHandle, pos: number, buf: Buffer): AsyncGenerator<Buffer, number> {
  for (;;) {
    const { bytesRead } = await fh.read(buf, 0, buf.length, pos);
    if (bytesRead === 0) return pos;
    pos += bytesRead;
    yield Buffer.from(buf.subarray(0, bytesRead));
  }
}

/** Yield what gets appended to the container's log, across rotations, until aborted or `done()`. */
export async function* followLog(containerDir: string, opts: FollowOptions = {}): AsyncGenerator<Buffer> {
  const file = path.join(containerDir, LOG_FILE);
  const pollMs = opts.pollMs ?? 100;
  let fh: FileHandle | undefined;
  let ino = -1;
  let pos = 0;
  const openCurrent = async (offset: number | 'end') => {
    try {
      fh = await open(file, 'r');
    } catch (err: any) {
      if (err?.code !== 'ENOENT') throw err;
      fh = undefined;
      return;
    }
    const s = await fh.stat();
    ino = s.ino;
    pos = offset === 'end' ? s.size : Math.min(offset, s.size);
  };
  await openCurrent(opts.fromOffset ?? 'end');
  const buf = Buffer.alloc(64 * 1024);
  try {
    for (;;) {
      if (opts.signal?.aborted) return;
      if (fh) {
        // Drain what is there now.
        pos = yield* drainFrom(fh, pos, buf);
        const now = await stat(file).catch(() => undefined);
        if (now && now.ino !== ino) {
          // Rotated. The shim may have written to the old file between our last read and the
          // rename: drain it again (it is never written after the rename).
          pos = yield* drainFrom(fh, pos, buf);
          await fh.close();
          fh = undefined;
          // More than one rotation since we looked: the old file is now log.k; log.(k-1) … log.1
          // came after it and are read whole before the current log.
          for (const older of await filesAfter(containerDir, ino)) {
            const h = await open(older, 'r').catch(() => undefined);
            if (!h) continue;
            try {
              yield* drainFrom(h, 0, buf);
            } finally {
              await h.close();
            }
          }
          await openCurrent(0);
          continue;
        }
        if (now && now.size < pos) pos = 0; // truncated in place (logMaxFiles = 1)
      } else {
        await openCurrent(0);
        if (fh) continue;
      }
      if (opts.done && (await opts.done())) {
        // One last drain: output written between the read above and the exit.
        if (fh) yield* drainFrom(fh, pos, buf);
        return;
      }
      await new Promise<void>((resolve) => {
        const t = setTimeout(resolve, pollMs);
        opts.signal?.addEventListener('abort', () => { clearTimeout(t); resolve(); }, { once: true });
      });
    }
  } finally {
    await fh?.close();
  }
}
