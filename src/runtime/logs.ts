/**
 * Reading a container's log files: `log` (current) and `log.1` … `log.N-1` (older), as berth-shim
 * rotates them, in the CRI format of ./log-records.ts (each line with its time and stream). `tail`
 * reads the last lines across files, from the end; `follow` keeps reading `log` and, when the shim
 * rotates it (the path points to a new inode), drains the old file before opening the new one.
 * Reading and following share one LineAssembler, so a long line whose pieces straddle the moment
 * the tail ends is printed whole once its end arrives.
 */
import { open, stat, type FileHandle } from 'node:fs/promises';
import path from 'node:path';
import { ifExists } from '../durable-file.ts';
import { formatLine, formatLines, LineAssembler, matches, RecordSplitter, type LogFilter, type LogLine, type LogRecord } from './log-records.ts';
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

/** The last `lines` lines (all when undefined) of the container's output, as text (both streams, no times). */
export async function readLogTail(containerDir: string, lines?: number): Promise<Buffer> {
  const t = lines === undefined ? await readAllLines(containerDir) : await readLogTailAt(containerDir, lines);
  return formatLines([...t.lines, ...t.assembler.flush()]);
}

async function readAllLines(containerDir: string): Promise<LogRead> {
  const all = readLogAll(containerDir);
  const lines: LogLine[] = [];
  for await (const batch of all.lines) lines.push(...batch);
  return { lines, assembler: all.assembler, logOffset: all.offset() };
}

export interface LogRead {
  /** Whole lines that pass the filter, oldest first. */
  lines: LogLine[];
  /** Holds the pieces of lines not ended yet: follow on with it, or flush it. */
  assembler: LineAssembler;
  /** How much of `log` was read: following from there continues exactly where the read ended. */
  logOffset: number;
}

/**
 * The last `count` lines that pass `filter`, across rotated files. Read from the end in growing
 * chunks; a stream's first record in what was read may be the end of a longer line whose start is
 * further back, so lines count only after each stream's first F record (or from the very start).
 */
export async function readLogTailAt(containerDir: string, count: number, filter: LogFilter = {}): Promise<LogRead> {
  const files = (await logFiles(containerDir)).reverse(); // newest first
  let newer: LogRecord[] = []; // every record of the files already read whole, oldest first
  let logOffset = 0;
  for (let fi = 0; fi < files.length; fi++) {
    let fh: FileHandle;
    try {
      fh = await open(files[fi]!, 'r');
    } catch {
      continue; // rotated away meanwhile
    }
    try {
      const size = (await fh.stat()).size;
      if (path.basename(files[fi]!) === LOG_FILE) logOffset = size;
      let pos = size;
      let data = Buffer.alloc(0);
      let chunk = 64 * 1024;
      for (;;) {
        const len = Math.min(chunk, pos);
        pos -= len;
        const buf = Buffer.alloc(len);
        await fh.read(buf, 0, len, pos);
        data = Buffer.concat([buf, data]);
        chunk *= 2;
        const atFileStart = pos === 0;
        // Before the first newline may be the end of a record that started further back.
        const from = atFileStart ? 0 : data.indexOf(10) + 1;
        if (!atFileStart && from === 0) continue;
        const records = splitWhole(data.subarray(from));
        const atStart = atFileStart && fi === files.length - 1;
        const got = lastLines([...records, ...newer], count, filter, atStart);
        if (got) return { ...got, logOffset };
        if (atFileStart) {
          newer = [...records, ...newer];
          break;
        }
      }
    } finally {
      await fh.close();
    }
  }
  return { ...(lastLines(newer, count, filter, true) ?? { lines: [], assembler: new LineAssembler() }), logOffset };
}

function splitWhole(data: Buffer): LogRecord[] {
  const s = new RecordSplitter();
  return [...s.push(data), ...s.end()];
}

/** The last `count` lines of `records` that are surely whole, or undefined when there are fewer (read further back). */
function lastLines(records: LogRecord[], count: number, filter: LogFilter, atStart: boolean): { lines: LogLine[]; assembler: LineAssembler } | undefined {
  const assembler = new LineAssembler();
  const anchored = { stdout: atStart, stderr: atStart };
  const lines: LogLine[] = [];
  for (const r of records) {
    if (!anchored[r.stream]) {
      if (!r.partial) anchored[r.stream] = true; // the line it ends may have begun before what was read
      continue;
    }
    for (const l of assembler.push(r)) if (matches(l, filter)) lines.push(l);
  }
  if (lines.length < count && !atStart) return undefined;
  return { lines: count <= 0 ? [] : lines.slice(-count), assembler };
}

/**
 * Every line of the container's logs that passes `filter`, oldest file first, streamed in batches
 * (one per 64 KiB read; never the whole history in memory). `offset()` then says how much of `log`
 * was read, to follow on from there.
 */
export function readLogAll(containerDir: string, filter: LogFilter = {}): { lines: AsyncGenerator<LogLine[]>; offset: () => number; assembler: LineAssembler } {
  let logOffset = 0;
  const assembler = new LineAssembler();
  async function* gen(): AsyncGenerator<LogLine[]> {
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
        const splitter = new RecordSplitter();
        const buf = Buffer.alloc(64 * 1024);
        for (let pos = 0; pos < end; ) {
          const { bytesRead } = await fh.read(buf, 0, Math.min(buf.length, end - pos), pos);
          if (bytesRead === 0) break;
          pos += bytesRead;
          if (isCurrent) logOffset = pos;
          yield [...linesOf(splitter.push(buf.subarray(0, bytesRead)), assembler, filter)];
        }
        yield [...linesOf(splitter.end(), assembler, filter)];
      } finally {
        await fh.close();
      }
    }
  }
  return { lines: gen(), offset: () => logOffset, assembler };
}

function* linesOf(records: LogRecord[], assembler: LineAssembler, filter: LogFilter): Generator<LogLine> {
  for (const r of records) for (const l of assembler.push(r)) if (matches(l, filter)) yield l;
}

/**
 * The rotated files newer than the one with inode `ino` (log.(k-1) … log.1 when it is log.k), oldest
 * first, with their inodes; every rotated file when it is gone (rotated off the end: all that is
 * left came after it).
 */
async function filesAfter(containerDir: string, ino: number): Promise<{ file: string; ino: number }[]> {
  const files = await logFiles(containerDir); // oldest first, `log` last
  const inos = await Promise.all(
    files.map((f) =>
      stat(f).then(
        (s) => s.ino,
        () => -1,
      ),
    ),
  );
  const i = inos.indexOf(ino);
  return files.slice(i + 1, -1).map((file, k) => ({ file, ino: inos[i + 1 + k]! }));
}

export interface FollowOptions {
  signal?: AbortSignal;
  /** Start reading `log` at this byte offset; default: its current end. */
  fromOffset?: number;
  pollMs?: number;
  /** Checked when caught up; true ends the follow (e.g. the task exited and its log is drained). */
  done?: () => Promise<boolean>;
  filter?: LogFilter;
  /** The assembler of the read this follow continues (it may hold the start of a line). */
  assembler?: LineAssembler;
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

/** What gets appended to the container's log, as text (both streams, no times), across rotations. */
export async function* followLog(containerDir: string, opts: FollowOptions = {}): AsyncGenerator<Buffer> {
  for await (const l of followLogLines(containerDir, opts)) yield formatLine(l);
}

/** Yield the lines appended to the container's log, across rotations, until aborted or `done()`. */
export async function* followLogLines(containerDir: string, opts: FollowOptions = {}): AsyncGenerator<LogLine> {
  const file = path.join(containerDir, LOG_FILE);
  const pollMs = opts.pollMs ?? 100;
  const filter = opts.filter ?? {};
  const assembler = opts.assembler ?? new LineAssembler();
  let splitter = new RecordSplitter();
  const decode = (chunk: Buffer) => linesOf(splitter.push(chunk), assembler, filter);
  // A file is done (rotated away): what follows its last newline is a record of its own.
  const endFile = function* () {
    yield* linesOf(splitter.end(), assembler, filter);
    splitter = new RecordSplitter();
  };
  let fh: FileHandle | undefined;
  let ino = -1;
  let pos = 0;
  const openCurrent = async (offset: number | 'end') => {
    fh = await ifExists(open(file, 'r'));
    if (!fh) return;
    const s = await fh.stat();
    ino = s.ino;
    pos = offset === 'end' ? s.size : Math.min(offset, s.size);
  };
  await openCurrent(opts.fromOffset ?? 'end');
  const buf = Buffer.alloc(64 * 1024);
  const drain = async function* (h: FileHandle, from: number): AsyncGenerator<LogLine, number> {
    const it = drainFrom(h, from, buf);
    for (;;) {
      const n = await it.next();
      if (n.done) return n.value;
      yield* decode(n.value);
    }
  };
  // A rotated file, read whole (it is never written again).
  const drainWhole = async function* (file: string): AsyncGenerator<LogLine> {
    const h = await open(file, 'r').catch(() => undefined);
    if (!h) return;
    try {
      yield* drain(h, 0);
      yield* endFile();
    } finally {
      await h.close();
    }
  };
  try {
    for (;;) {
      if (opts.signal?.aborted) return;
      if (fh) {
        // Drain what is there now.
        pos = yield* drain(fh, pos);
        const now = await stat(file).catch(() => undefined);
        if (now && now.ino !== ino) {
          // Rotated. The shim may have written to the old file between our last read and the
          // rename: drain it again (it is never written after the rename).
          pos = yield* drain(fh, pos);
          yield* endFile();
          await fh.close();
          fh = undefined;
          // More than one rotation since we looked: the old file is now log.k; log.(k-1) … log.1
          // came after it and are read whole before the current log. The shim may rotate again
          // between that listing and the open of `log`: then the file that was `log` is a rotated
          // one now, listed after the last one read, and is read before the new `log`.
          let last = ino;
          const read = new Set([ino]); // (a file rotated off the end lists every rotated one again)
          const unread = async () => (await filesAfter(containerDir, last)).filter((o) => !read.has(o.ino));
          for (;;) {
            for (const older of await unread()) {
              yield* drainWhole(older.file);
              read.add(older.ino);
              last = older.ino;
            }
            await openCurrent(0);
            if (!fh || (await unread()).length === 0) break;
            await (fh as FileHandle).close();
            fh = undefined;
          }
          continue;
        }
        if (now && now.size < pos) {
          pos = 0; // truncated in place (logMaxFiles = 1)
          splitter = new RecordSplitter();
        }
      } else {
        const seenBefore = ino !== -1;
        await openCurrent(0);
        if (fh && !seenBefore) {
          // The log did not exist when the follow began: anything the shim already rotated came first.
          for (const older of (await logFiles(containerDir)).slice(0, -1)) yield* drainWhole(older);
        }
        if (fh) continue;
      }
      if (opts.done && (await opts.done())) {
        // One last drain: output written between the read above and the exit.
        if (fh) yield* drain(fh, pos);
        yield* endFile();
        for (const l of assembler.flush()) if (matches(l, filter)) yield l;
        return;
      }
      await new Promise<void>((resolve) => {
        const t = setTimeout(resolve, pollMs);
        opts.signal?.addEventListener(
          'abort',
          () => {
            clearTimeout(t);
            resolve();
          },
          { once: true },
        );
      });
    }
  } finally {
    await fh?.close();
  }
}
