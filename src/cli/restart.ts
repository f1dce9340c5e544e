/**
 * `berth restart NAME...`: stop each container's task (its stop signal, then SIGKILL after its
 * grace period) and start a new one in the same bundle and writable layer, as `ctr task start`
 * does after an exit. The desired state is unchanged. It holds the reconcile lock, like `berth
 * apply`, so a daemon turn never sees the task half-way (stopped on purpose) and acts on it.
 */
import { RECONCILE_LOCK, withLock } from '../metadata/lock.ts';
import type { RegisterVerb } from './verbs.ts';

export const register: RegisterVerb = (program, run) => {
  program
    .command('restart')
    .description('stop and start containers, keeping their writable layers (the desired state is unchanged)')
    .argument('<names...>', 'container names')
    .option('-t, --time <seconds>', "seconds to wait for the task to stop before SIGKILL (default: the container's stopGracePeriod)")
    .action(
      run(async (ctx, names: string[], flags: { time?: string }) => {
        const [{ openReconcileDeps }, { restartContainer }, { invalidArgument }] = await Promise.all([
          import('./daemon-deps.ts'),
          import('../reconcile/containers.ts'),
          import('../errors.ts'),
        ]);
        const graceMs = flags.time === undefined ? undefined : Number(flags.time) * 1000;
        if (graceMs !== undefined && !(graceMs >= 0)) throw invalidArgument(`--time: "${flags.time}" is not a number of seconds`);
        // No start-up recovery: restarting one container must not act on the others.
        const deps = await openReconcileDeps(ctx, { recovery: false });
        try {
          for (const name of names) await deps.runtime.readRecord(name); // NotFound names it before anything stops
          await withLock(
            deps.metadata,
            RECONCILE_LOCK,
            {
              holder: `berth restart (pid ${process.pid})`,
              waitMs: 60_000,
              signal: ctx.signal,
              onWait: (h) => process.stderr.write(`waiting for the reconcile lock, held by ${h.holder} (pid ${h.pid})\n`),
            },
            async (signal) => {
              for (const name of names) {
                await deps.runtime.stop(name, { signal, gracePeriodMs: graceMs });
                // As the reconciler restarts a task: its network namespace is set up again if it was lost.
                await restartContainer(deps, name, (await deps.runtime.readRecord(name)).backoffStreak, signal);
                const st = (await deps.runtime.list()).find((c) => c.name === name);
                ctx.out.write(`${name}: restarted (pid ${st?.pid ?? '-'})\n`);
              }
            },
          );
        } finally {
          await deps.close();
        }
      }),
    );
};
