/**
 * `berth stats [--json] [--no-stream] [NAME...]`: CPU, memory, pids and block I/O of running
 * containers, from their cgroups. CPU % is measured between two readings a second apart (100% is
 * one core busy). `--json` prints one sample; on a terminal the table refreshes until Ctrl-C unless
 * `--no-stream`.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { notFound } from '../errors.ts';
import { cpuPercent, readCgroupStats, type CgroupStats } from '../runtime/cgroup-stats.ts';
import type { ContainerStatus } from '../runtime/container-runtime.ts';
import { Runtime } from '../runtime/runtime.ts';
import { formatBytes } from '../format-bytes.ts';
import { formatTable } from './status-table.ts';
import type { RegisterVerb } from './verbs.ts';

const SAMPLE_MS = 1000;

interface Row {
  name: string;
  stats: CgroupStats;
  cpuPercent: number;
}

async function sample(list: ContainerStatus[], signal: AbortSignal): Promise<Row[]> {
  const read = () => Promise.all(list.map((s) => readCgroupStats(s.record.cgroupsPath)));
  const t0 = process.hrtime.bigint();
  const before = await read();
  await sleep(SAMPLE_MS, undefined, { signal });
  const after = await read();
  const elapsedNs = Number(process.hrtime.bigint() - t0);
  return list.map((s, i) => ({ name: s.name, stats: after[i]!, cpuPercent: cpuPercent(before[i]!, after[i]!, elapsedNs) }));
}

function table(rows: Row[]): string {
  return formatTable([
    ['NAME', 'CPU %', 'MEM USAGE / LIMIT', 'MEM %', 'PIDS', 'BLOCK I/O'],
    ...rows.map(({ name, stats: s, cpuPercent: cpu }) => [
      name,
      `${cpu.toFixed(2)}%`,
      `${formatBytes(s.memoryBytes)} / ${s.memoryLimitBytes === undefined ? '-' : formatBytes(s.memoryLimitBytes)}`,
      s.memoryLimitBytes ? `${((s.memoryBytes / s.memoryLimitBytes) * 100).toFixed(2)}%` : '-',
      String(s.pids),
      `${formatBytes(s.blockReadBytes)} / ${formatBytes(s.blockWriteBytes)}`,
    ]),
  ]);
}

export const register: RegisterVerb = (program, run) => {
  program
    .command('stats')
    .description('CPU, memory, pids and block I/O of running containers (all, or those named)')
    .argument('[names...]', 'container names')
    .option('--json', 'print one sample as JSON')
    .option('--no-stream', 'print one sample and exit (the default when not on a terminal)')
    .action(
      run(async (ctx, names: string[], flags: { json?: boolean; stream?: boolean }) => {
        const rt = Runtime.forReading({ root: ctx.config.root, binary: ctx.config.runtime.binary });
        const running = async () => {
          const all = await rt.list();
          for (const n of names) if (!all.some((s) => s.name === n)) throw notFound(`container ${n} not found`);
          return all.filter((s) => s.state === 'running' && (names.length === 0 || names.includes(s.name)));
        };
        if (flags.json) {
          const rows = await sample(await running(), ctx.signal);
          ctx.out.write(
            `${JSON.stringify(
              rows.map(({ name, stats: s, cpuPercent: cpu }) => ({
                name,
                cpuPercent: Math.round(cpu * 100) / 100,
                cpuSeconds: s.cpuNs / 1e9,
                memoryBytes: s.memoryBytes,
                memoryLimitBytes: s.memoryLimitBytes ?? null,
                pids: s.pids,
                pidsLimit: s.pidsLimit ?? null,
                blockReadBytes: s.blockReadBytes,
                blockWriteBytes: s.blockWriteBytes,
              })),
              null,
              2,
            )}\n`,
          );
          return;
        }
        if (flags.stream === false || !ctx.out.isTTY) {
          ctx.out.write(table(await sample(await running(), ctx.signal)));
          return;
        }
        // A terminal: redraw in place until Ctrl-C (the abort ends the sample's wait).
        while (!ctx.signal.aborted) {
          const text = table(
            await sample(await running(), ctx.signal).catch((err) => {
              if (ctx.signal.aborted) return [];
              throw err;
            }),
          );
          if (ctx.signal.aborted) break;
          ctx.out.write(`\x1b[H\x1b[2J${text}`);
        }
      }),
    );
};
