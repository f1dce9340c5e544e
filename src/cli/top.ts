/**
 * `berth top NAME [--json]`: the processes of a running container (every process in its cgroup),
 * as `docker top` shows them: UID PID PPID C STIME TTY TIME CMD, with host pids and uids.
 */
import { failedPrecondition } from '../errors.ts';
import { cgroupProcesses } from '../runtime/cgroup-stats.ts';
import { formatCpuTime, readProcesses } from '../runtime/proc-info.ts';
import { Runtime } from '../runtime/runtime.ts';
import { formatTable } from './status-table.ts';
import type { RegisterVerb } from './verbs.ts';

/** ps's STIME: the time of day for a process started today, else the date. */
function startTime(ms: number, now: number): string {
  const d = new Date(ms);
  const sameDay = new Date(now).toDateString() === d.toDateString();
  return sameDay ? `${String(d.getHours()).padStart(2, '0')}:${String(d.getMinutes()).padStart(2, '0')}` : d.toISOString().slice(0, 10);
}

export const register: RegisterVerb = (program, run) => {
  program
    .command('top')
    .description("list a running container's processes")
    .argument('<name>', 'container name')
    .option('--json', 'print JSON')
    .action(
      run(async (ctx, name: string, flags: { json?: boolean }) => {
        const rt = Runtime.forReading({ root: ctx.config.root, binary: ctx.config.runtime.binary });
        const st = await rt.status(name); // NotFound names the container
        if (st.state !== 'running') throw failedPrecondition(`container ${name} is not running (${st.state})`);
        const procs = await readProcesses(await cgroupProcesses(st.record.cgroupsPath));
        if (flags.json) {
          const rows = procs.map((p) => ({ ...p, startedAt: new Date(p.startedAtMs).toISOString(), tty: p.tty ?? null }));
          ctx.out.write(`${JSON.stringify(rows, null, 2)}\n`);
          return;
        }
        const now = Date.now();
        ctx.out.write(
          formatTable([
            ['UID', 'PID', 'PPID', 'C', 'STIME', 'TTY', 'TIME', 'CMD'],
            ...procs.map((p) => [
              String(p.uid),
              String(p.pid),
              String(p.ppid),
              String(p.cpuShare),
              startTime(p.startedAtMs, now),
              p.tty ?? '?',
              formatCpuTime(p.cpuTicks),
              p.command,
            ]),
          ]),
        );
      }),
    );
};
