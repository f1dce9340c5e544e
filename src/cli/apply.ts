/**
 * `berth apply -f DIR`: converge once: import what is in the import directory, plan, execute, and
 * print what was done. When the change replaced containers and a confirmed generation exists to fall
 * back to, it then watches the rollout (unless --no-wait) until the new containers are confirmed or
 * the generation is rolled back. Exit 0 only if the device converged to the manifests; 1 otherwise
 * (each failure printed, and a rollback with its reason).
 */
import { formatProblem } from '../manifest/problems.ts';
import type { StepOutcome } from '../reconcile/execute.ts';
import { ExitCode, manifestsPath } from './context.ts';
import { watchRollout } from './rollout-watch.ts';
import type { RegisterVerb } from './verbs.ts';

const MARK: Record<StepOutcome['result'], string> = { ok: 'done', failed: 'FAILED', waiting: 'waiting', blocked: 'blocked' };

export function formatOutcome(o: StepOutcome): string {
  const secs = o.ms >= 100 ? ` (${(o.ms / 1000).toFixed(1)}s)` : '';
  // A wait's message is its reason: say it once.
  const detail = o.result === 'ok' ? secs : o.message === o.step.reason ? '' : `: ${o.message}`;
  return `${MARK[o.result].padEnd(7)} ${o.step.reason}${detail}`;
}

export const register: RegisterVerb = (program, run) => {
  program
    .command('apply')
    .description('converge the device to the manifests once; exit 0 only if converged')
    .option('-f, --file <path>', 'manifests directory or file (default: reconcile.manifests in the config)')
    .option('--allow-empty', 'accept a set with no documents (removes every container)')
    .option('--no-wait', 'do not watch the rollout until it is confirmed or rolled back')
    .option('--force', 'update even outside the update window and while an app holds its update lock')
    .action(
      run(async (ctx, opts: { file?: string; allowEmpty?: boolean; wait: boolean; force?: boolean }) => {
        const [{ openReconcileDeps }, { Reconciler }, { importDirectory }, { ContainerProbes }] = await Promise.all([
          import('./daemon-deps.ts'),
          import('../reconcile/reconciler.ts'),
          import('../reconcile/import-dir.ts'),
          import('../reconcile/container-probes.ts'),
        ]);
        const deps = await openReconcileDeps(ctx);
        const probes = new ContainerProbes(deps, () => {});
        try {
          await importDirectory(deps, ctx.config.reconcile.importDir, ctx.signal);
          const reconciler = new Reconciler(deps, {
            manifests: manifestsPath(ctx, opts),
            holder: `berth apply (pid ${process.pid})`,
            allowEmpty: opts.allowEmpty,
            lockWaitMs: 60_000,
            probes: (name) => probes.verdict(name),
            force: opts.force,
            onOutcome: (o) => ctx.out.write(`${formatOutcome(o)}\n`),
          });
          let report = await reconciler.turn(ctx.signal);
          if (report.problems.length) {
            for (const p of report.problems) process.stderr.write(`${formatProblem(p)}\n`);
            process.stderr.write('nothing applied: the manifests have problems\n');
            throw new ExitCode(1);
          }
          if (report.steps.length === 0) ctx.out.write('no changes: the device is in the desired state\n');
          else
            ctx.out.write(
              `${report.converged ? 'converged' : 'NOT converged'} in ${(report.durationMs / 1000).toFixed(1)}s (generation ${report.generation?.id ?? '-'})\n`,
            );
          report = await watchRollout(ctx, reconciler, probes, report, opts.wait);
          if (!report.converged) throw new ExitCode(1);
        } finally {
          await probes.close();
          await deps.close();
        }
      }),
    );
};
