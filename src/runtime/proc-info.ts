/**
 * One process as `ps -f` (and `docker top`) shows it, read from the host's /proc: its user, pid,
 * parent, CPU share, start time, terminal, CPU time and command line.
 */
import { execFileSync } from 'node:child_process';
import { readFile } from 'node:fs/promises';

export interface ProcessInfo {
  pid: number;
  ppid: number;
  /** Real uid as the host sees it. */
  uid: number;
  /** Clock ticks of CPU time (user + system). */
  cpuTicks: number;
  /** When it started, ms since the epoch. */
  startedAtMs: number;
  /** Percent of its lifetime spent on a CPU (ps's C column). */
  cpuShare: number;
  /** pts/N, ttyN, or undefined without a terminal. */
  tty?: string;
  /** The command line, or `[name]` when it has none (a kernel thread, a zombie). */
  command: string;
}

/** Clock ticks per second (USER_HZ): 100 on every Linux architecture berth runs on, asked once. */
let ticksPerSecond: number | undefined;
function clockTicks(): number {
  if (ticksPerSecond === undefined) {
    try {
      ticksPerSecond = Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim()) || 100;
    } catch {
      ticksPerSecond = 100;
    }
  }
  return ticksPerSecond;
}

/** The boot time (`btime` in /proc/stat, seconds) and the uptime now, to date processes. */
async function clockBase(): Promise<{ bootMs: number; uptimeS: number }> {
  const stat = await readFile('/proc/stat', 'utf8');
  const btime = Number(/^btime (\d+)$/m.exec(stat)?.[1] ?? 0);
  const uptimeS = Number((await readFile('/proc/uptime', 'utf8')).split(' ')[0]);
  return { bootMs: btime * 1000, uptimeS };
}

/** tty_nr: major 136-143 are pseudo-terminals, 4 virtual consoles. */
function ttyName(ttyNr: number): string | undefined {
  if (ttyNr === 0) return undefined;
  const major = (ttyNr >> 8) & 0xfff;
  const minor = (ttyNr & 0xff) | ((ttyNr >> 12) & 0xfff00);
  if (major >= 136 && major <= 143) return `pts/${(major - 136) * 256 + minor}`;
  if (major === 4) return `tty${minor}`;
  return `${major}:${minor}`;
}

/** The processes among `pids` that still exist (one may exit while we read), in pid order. */
export async function readProcesses(pids: number[]): Promise<ProcessInfo[]> {
  const hz = clockTicks();
  const { bootMs, uptimeS } = await clockBase();
  const out = await Promise.all(
    [...pids]
      .sort((a, b) => a - b)
      .map(async (pid): Promise<ProcessInfo | undefined> => {
        try {
          const [stat, status, cmdline] = await Promise.all([
            readFile(`/proc/${pid}/stat`, 'utf8'),
            readFile(`/proc/${pid}/status`, 'utf8'),
            readFile(`/proc/${pid}/cmdline`, 'utf8'),
          ]);
          // The name is in parentheses and may itself hold ") ": the fields resume after the last one.
          const name = stat.slice(stat.indexOf('(') + 1, stat.lastIndexOf(')'));
          const f = stat.slice(stat.lastIndexOf(')') + 2).split(' '); // f[0] is field 3 (state)
          const ppid = Number(f[1]);
          const ttyNr = Number(f[4]);
          const cpuTicks = Number(f[11]) + Number(f[12]);
          const startTicks = Number(f[19]);
          const lifeS = uptimeS - startTicks / hz;
          const args = cmdline.split('\0').filter((a, i, all) => a !== '' || i < all.length - 1);
          return {
            pid,
            ppid,
            uid: Number(/^Uid:\s+(\d+)/m.exec(status)?.[1] ?? -1),
            cpuTicks,
            startedAtMs: bootMs + (startTicks / hz) * 1000,
            cpuShare: lifeS > 0 ? Math.min(999, Math.floor((cpuTicks / hz / lifeS) * 100)) : 0,
            tty: ttyName(ttyNr),
            command: args.length ? args.join(' ') : `[${name}]`,
          };
        } catch {
          return undefined; // gone meanwhile
        }
      }),
  );
  return out.filter((p): p is ProcessInfo => p !== undefined);
}

/** CPU time as ps prints it: [DD-]HH:MM:SS. */
export function formatCpuTime(ticks: number): string {
  let s = Math.floor(ticks / clockTicks());
  const d = Math.floor(s / 86400);
  s -= d * 86400;
  const hms = [Math.floor(s / 3600), Math.floor((s % 3600) / 60), s % 60].map((n) => String(n).padStart(2, '0')).join(':');
  return d ? `${d}-${hms}` : hms;
}
