/**
 * The CRI log format berth-shim writes, one record a line:
 * `2026-12-02T06:00:00.123456789Z stdout F text` (time read, stream, F: the line ended here, P: a
 * piece of a longer line whose rest follows in that stream's next records). Records become lines
 * again here: the pieces of one stream are joined until its F. A line without a valid prefix was
 * written by an older shim (one file for both streams, no times): it is a whole stdout line of
 * unknown time.
 */

export type LogStream = 'stdout' | 'stderr';

export interface LogRecord {
  /** The time as written (RFC 3339, nanoseconds); undefined for a line from before the format. */
  time?: string;
  stream: LogStream;
  partial: boolean;
  text: Buffer;
}

/** One line of output as the program wrote it, without its newline. */
export interface LogLine {
  /** When its first piece was read; undefined for an old line. */
  time?: string;
  stream: LogStream;
  text: Buffer;
  /** False for a piece given out before its end: the stream ended mid-line, or the line is longer than a reader keeps. */
  complete: boolean;
}

const TIME = /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(?:\.\d{1,9})?(?:Z|[+-]\d\d:\d\d)$/;

const STDOUT = Buffer.from('stdout');
const STDERR = Buffer.from('stderr');

/** One record: the bytes of `buf` from `start` to `end` (its newline excluded). */
export function parseRecord(buf: Buffer, start = 0, end = buf.length): LogRecord {
  const a = buf.indexOf(32, start);
  // "<time> stdout F " : the stream is six bytes after the time's space, then the one-byte tag and a
  // space (or the end: an empty F line written by an older CRI writer).
  const b = a + 7;
  if (a > start && a < end && b < end && buf[b] === 32 && (b + 2 === end || (b + 2 < end && buf[b + 2] === 32))) {
    const tag = buf[b + 1];
    const stream = buf.compare(STDOUT, 0, 6, a + 1, b) === 0 ? 'stdout' : buf.compare(STDERR, 0, 6, a + 1, b) === 0 ? 'stderr' : undefined;
    if (stream && (tag === 0x46 || tag === 0x50)) {
      const time = buf.toString('latin1', start, a);
      if (TIME.test(time)) return { time, stream, partial: tag === 0x50, text: buf.subarray(Math.min(end, b + 3), end) };
    }
  }
  return { stream: 'stdout', partial: false, text: buf.subarray(start, end) };
}

/** Splits bytes into records at newlines, keeping an unended record for the next bytes. */
export class RecordSplitter {
  private rest: Buffer = Buffer.alloc(0);

  push(chunk: Buffer): LogRecord[] {
    const buf = this.rest.length ? Buffer.concat([this.rest, chunk]) : chunk;
    const out: LogRecord[] = [];
    let start = 0;
    for (let nl = buf.indexOf(10, start); nl >= 0; nl = buf.indexOf(10, start)) {
      out.push(parseRecord(buf, start, nl));
      start = nl + 1;
    }
    this.rest = Buffer.from(buf.subarray(start));
    return out;
  }

  /** The end of a file: bytes after its last newline (an old file cut at the size cap) are a record too. */
  end(): LogRecord[] {
    const rest = this.rest;
    this.rest = Buffer.alloc(0);
    return rest.length ? [parseRecord(rest)] : [];
  }
}

/** A line longer than this is given out in pieces (complete: false) rather than held in memory. */
export const MAX_LINE_BYTES = 1024 * 1024;

/** Joins each stream's P records up to its F record. */
export class LineAssembler {
  private pending: Partial<Record<LogStream, { time?: string; parts: Buffer[]; size: number }>> = {};

  push(r: LogRecord): LogLine[] {
    const p = this.pending[r.stream];
    if (!p && !r.partial) return [{ time: r.time, stream: r.stream, text: r.text, complete: true }];
    const cur = p ?? { time: r.time, parts: [], size: 0 };
    cur.parts.push(Buffer.from(r.text));
    cur.size += r.text.length;
    this.pending[r.stream] = cur;
    if (r.partial && cur.size < MAX_LINE_BYTES) return [];
    delete this.pending[r.stream];
    const line: LogLine = { time: cur.time, stream: r.stream, text: Buffer.concat(cur.parts), complete: !r.partial };
    // The rest of a line given out in pieces keeps the first piece's time.
    if (r.partial) this.pending[r.stream] = { time: cur.time, parts: [], size: 0 };
    return [line];
  }

  /** True while a stream has pieces without their end. */
  get holding(): boolean {
    return Object.values(this.pending).some((p) => p && p.size > 0);
  }

  /** The pieces held, as unended lines (the output ends here). */
  flush(): LogLine[] {
    const out: LogLine[] = [];
    for (const stream of ['stdout', 'stderr'] as const) {
      const p = this.pending[stream];
      if (p && p.size > 0) out.push({ time: p.time, stream, text: Buffer.concat(p.parts), complete: false });
    }
    this.pending = {};
    return out;
  }
}

export interface LogFilter {
  stream?: LogStream;
  /** Only lines read at or after this time (ms since the epoch); an old line, of unknown time, is left out. */
  sinceMs?: number;
}

export function matches(line: LogLine, f: LogFilter): boolean {
  if (f.stream && line.stream !== f.stream) return false;
  if (f.sinceMs !== undefined && !(line.time !== undefined && Date.parse(line.time) >= f.sinceMs)) return false;
  return true;
}

/**
 * A line as `logs` prints it: the text, after the time when asked; a newline only where the program
 * wrote one (a piece of a line without its end is printed as it is, like `docker logs`).
 */
export function formatLine(line: LogLine, o: { timestamps?: boolean } = {}): Buffer {
  return formatLines([line], o);
}

/** Many lines as one buffer (one allocation: a tail of thousands of lines is printed at once). */
export function formatLines(lines: LogLine[], o: { timestamps?: boolean } = {}): Buffer {
  const prefix = (l: LogLine) => (o.timestamps ? `${l.time ?? '-'} ` : '');
  let size = 0;
  for (const l of lines) size += Buffer.byteLength(prefix(l), 'latin1') + l.text.length + (l.complete ? 1 : 0);
  const out = Buffer.allocUnsafe(size);
  let at = 0;
  for (const l of lines) {
    at += out.write(prefix(l), at, 'latin1');
    at += l.text.copy(out, at);
    if (l.complete) out[at++] = 10;
  }
  return out;
}
