/** `berth ps [--json]`: every container with its image, state, health, pid, exit code, restarts, start time and age. */
import { currentHealth } from '../runtime/health/health-file.ts';
import { Runtime } from '../runtime/runtime.ts';
import { bundleLabels } from '../runtime/state.ts';
import { describeState, humanDuration } from './container-format.ts';
import type { RegisterVerb } from './verbs.ts';

export const register: RegisterVerb = (program, run) => {
  program
    .command('ps')
    .description('list containers: name, image, state, health, pid, exit code, restarts, started, age')
    .option('--json', 'print JSON')
    .action(
      run(async (ctx, flags: { json?: boolean }) => {
        const rt = Runtime.forReading({ root: ctx.config.root, binary: ctx.config.runtime.binary });
        const { containers: list, problems } = await rt.listWithProblems();
        for (const p of problems) process.stderr.write(`berth: container ${p.name}: ${p.error.message}\n`);
        const now = Date.now();
        // The health the daemon's monitor recorded for the running task (none: no check, or not running).
        const health = await Promise.all(list.map((s) => currentHealth(rt.root, s.name, s.state === 'running' ? s.startedAtMs : undefined)));
        if (flags.json) {
          const labels = await Promise.all(list.map((s) => bundleLabels(rt.containerDir(s.name))));
          const rows = list.map((s, i) => ({
            name: s.name,
            image: s.record.imageRef,
            imageDigest: s.record.imageDigest,
            labels: labels[i],
            state: s.state,
            health: health[i]?.status ?? null,
            pid: s.state === 'running' ? (s.pid ?? null) : null,
            exitCode: s.exit?.exitCode ?? null,
            signal: s.exit?.signal || null,
            oomKilled: s.exit?.oomKilled ?? false,
            restarts: s.record.restartCount,
            startedAt: s.startedAtMs ? new Date(s.startedAtMs).toISOString() : null,
            finishedAt: s.finishedAtMs ? new Date(s.finishedAtMs).toISOString() : null,
            createdAt: s.record.createdAt,
            detail: s.detail ?? null,
          }));
          ctx.out.write(`${JSON.stringify(rows, null, 2)}\n`);
          return;
        }
        const rows = [
          ['NAME', 'IMAGE', 'STATE', 'HEALTH', 'PID', 'EXIT', 'RESTARTS', 'STARTED', 'AGE'],
          ...list.map((s, i) => [
            s.name,
            s.record.imageRef,
            describeState(s),
            health[i]?.status ?? '-',
            s.state === 'running' && s.pid ? String(s.pid) : '-',
            s.exit && s.state !== 'running' ? String(s.exit.exitCode) : '-',
            String(s.record.restartCount),
            s.startedAtMs ? `${humanDuration(now - s.startedAtMs)} ago` : '-',
            humanDuration(now - Date.parse(s.record.createdAt)),
          ]),
        ];
        const widths = rows[0]!.map((_, c) => Math.max(...rows.map((r) => r[c]!.length)));
        for (const r of rows) ctx.out.write(`${r.map((cell, c) => (c === r.length - 1 ? cell : cell.padEnd(widths[c]!))).join('  ')}\n`);
      }),
    );
};
