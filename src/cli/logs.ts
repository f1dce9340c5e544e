/**
 * `berth logs NAME [-f] [--tail N] [--timestamps] [--since T] [--stream S]`: a container's output
 * across rotated files, as the program wrote it (like `docker logs`); each line was recorded with
 * its time and stream, which select and prefix what is printed.
 */
import { invalidArgument } from '../errors.ts';
import { parseDuration } from '../config/units.ts';
import { formatLines, matches, type LogFilter, type LogLine } from '../runtime/log-records.ts';
import { followLogLines, readLogAll, readLogTailAt } from '../runtime/logs.ts';
import { Runtime } from '../runtime/runtime.ts';
import type { RegisterVerb } from './verbs.ts';

/** `--since`: a duration back from now (`10m`, `1h30m`) or a time (RFC 3339, `2026-12-02T06:00:00Z`). */
export function parseSince(value: string, nowMs: number): number {
  if (/^\d{4}-\d\d-\d\d/.test(value)) {
    const t = Date.parse(value);
    if (!Number.isFinite(t)) throw invalidArgument(`--since: "${value}" is not a time (RFC 3339, e.g. 2026-12-02T06:00:00Z)`);
    return t;
  }
  return nowMs - parseDuration(value, '--since');
}

interface LogsFlags {
  follow?: boolean;
  tail?: string;
  timestamps?: boolean;
  since?: string;
  stream?: string;
}

export const register: RegisterVerb = (program, run) => {
  program
    .command('logs')
    .description("print a container's logs")
    .argument('<name>', 'container name')
    .option('-f, --follow', 'keep printing new output (across log rotations) until the task exits or Ctrl-C')
    .option('--tail <n>', 'only the last N lines')
    .option('-t, --timestamps', 'print the time each line was read before it (RFC 3339, UTC, nanoseconds)')
    .option('--since <when>', 'only lines since a time (RFC 3339) or for a duration back from now (10m, 1h)')
    .option('--stream <stream>', 'only stdout or only stderr')
    .action(
      run(async (ctx, name: string, flags: LogsFlags) => {
        let tail: number | undefined;
        if (flags.tail !== undefined) {
          tail = Number(flags.tail);
          if (!Number.isInteger(tail) || tail < 0) throw invalidArgument(`--tail: "${flags.tail}" is not a number of lines`);
        }
        const filter: LogFilter = {};
        if (flags.stream !== undefined) {
          if (flags.stream !== 'stdout' && flags.stream !== 'stderr') throw invalidArgument(`--stream: "${flags.stream}" is not stdout or stderr`);
          filter.stream = flags.stream;
        }
        if (flags.since !== undefined) filter.sinceMs = parseSince(flags.since, Date.now());
        const rt = Runtime.forReading({ root: ctx.config.root, binary: ctx.config.runtime.binary });
        await rt.readRecord(name); // NotFound names the container
        const dir = rt.containerDir(name);
        const writeAll = async (lines: LogLine[]) => {
          if (lines.length === 0) return;
          if (!ctx.out.write(formatLines(lines, { timestamps: flags.timestamps }))) await new Promise((r) => ctx.out.once('drain', r));
        };
        const write = (l: LogLine) => writeAll([l]);
        let logOffset: number;
        let assembler;
        if (tail === undefined) {
          const all = readLogAll(dir, filter);
          for await (const batch of all.lines) await writeAll(batch);
          logOffset = all.offset();
          assembler = all.assembler;
        } else {
          const t = await readLogTailAt(dir, tail, filter);
          await writeAll(t.lines);
          logOffset = t.logOffset;
          assembler = t.assembler;
        }
        if (!flags.follow) {
          // A line the program has not ended yet (it may still be writing it): what there is of it.
          for (const l of assembler.flush()) if (tail !== 0 && matches(l, filter)) await write(l);
          return;
        }
        const done = async () => {
          const st = await rt.status(name).catch(() => undefined);
          return !st || (st.state !== 'running' && st.state !== 'unknown' && !(st.state === 'created' && st.detail));
        };
        for await (const l of followLogLines(dir, { fromOffset: logOffset, signal: ctx.signal, done, filter, assembler })) await write(l);
      }),
    );
};
