/**
 * `berth reconcile [--now]`: converge once to the git source (`[source.git]`): with `--now`, fetch
 * and verify first (the sync the daemon runs every interval), then apply the current verified
 * revision, printing each step; then, as `berth apply`, it watches the rollout (unless --no-wait)
 * until the new containers are confirmed or the generation is rolled back. A daemon running
 * meanwhile sees the new revision at its next turn.
 * Exit 0 only if the source is Ready (fetched, verified, applied) and the device converged.
 */
import { invalidArgument } from '../errors.ts';
import { formatProblem } from '../manifest/problems.ts';
import { formatOutcome } from './apply.ts';
import { ExitCode } from './context.ts';
import { watchRollout } from './rollout-watch.ts';
import type { RegisterVerb } from './verbs.ts';

export const register: RegisterVerb = (program, run) => {
  program
    .command('reconcile')
    .description('converge once to the git source ([source.git]); --now fetches and verifies it first')
    .option('--now', 'fetch the source at once, verify it and make it current before applying')
    .option('--allow-empty', 'accept a set with no documents (removes every container)')
    .option('--no-wait', 'do not watch the rollout until it is confirmed or rolled back')
    .action(
      run(async (ctx, opts: { now?: boolean; allowEmpty?: boolean; wait: boolean }) => {
        const git = ctx.config.source.git;
        if (!git) throw invalidArgument('berth reconcile: the config has no [source.git] (use berth apply -f DIR for a directory)');
        const [{ openReconcileDeps }, { Reconciler }, { importDirectory }, { GitSource }, { recordSourceStatus }, { ContainerProbes }] = await Promise.all([
          import('./daemon-deps.ts'),
          import('../reconcile/reconciler.ts'),
          import('../reconcile/import-dir.ts'),
          import('../source/git.ts'),
          import('../source/status-row.ts'),
          import('../reconcile/container-probes.ts'),
        ]);
        const deps = await openReconcileDeps(ctx);
        const probes = new ContainerProbes(deps, () => {});
        try {
          const source = new GitSource({ root: ctx.config.root, config: git, log: ctx.log });
          const status = opts.now ? await source.sync(ctx.signal) : await source.load();
          recordSourceStatus(deps.metadata, status);
          ctx.out.write(`source ${status.url} ${status.ref}: ${status.state} ${status.reason}: ${status.message}\n`);
          if (!(await source.currentDir())) {
            process.stderr.write('nothing applied: no verified revision yet\n');
            throw new ExitCode(1);
          }
          await importDirectory(deps, ctx.config.reconcile.importDir, ctx.signal);
          const reconciler = new Reconciler(deps, {
            manifests: source.manifestsPath(),
            holder: `berth reconcile (pid ${process.pid})`,
            allowEmpty: opts.allowEmpty,
            lockWaitMs: 60_000,
            probes: (name) => probes.verdict(name),
            onOutcome: (o) => ctx.out.write(`${formatOutcome(o)}\n`),
          });
          const first = await reconciler.turn(ctx.signal);
          const report = first.problems.length ? first : await watchRollout(ctx, reconciler, probes, first, opts.wait);
          for (const p of report.problems) process.stderr.write(`${formatProblem(p)}\n`);
          ctx.out.write(
            `${report.converged && !report.problems.length ? 'converged' : 'NOT converged'} (generation ${report.generation?.id ?? '-'}, revision ${report.desired?.revision ?? '-'})\n`,
          );
          if (!report.converged || report.problems.length || (opts.now && status.state !== 'Ready')) throw new ExitCode(1);
        } finally {
          await probes.close();
          await deps.close();
        }
      }),
    );
};
