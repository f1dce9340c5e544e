/**
 * `berth plan -f DIR`: what apply would change, and why, without changing anything.
 * Exit 0: no change; 2: changes; 1: an error (e.g. invalid manifests, every problem printed).
 */
import { formatProblem } from '../manifest/problems.ts';
import { containerWarnings } from '../manifest/warnings.ts';
import { describePlan } from '../reconcile/plan.ts';
import { isChange } from '../reconcile/types.ts';
import { ExitCode, manifestsPath } from './context.ts';
import type { RegisterVerb } from './verbs.ts';
import { explainOrigins } from './device-flags.ts';

export const register: RegisterVerb = (program, run) => {
  program
    .command('plan')
    .description('show what apply would change and why (exit 0 no change, 2 changes, 1 error)')
    .option('-f, --file <path>', 'manifests directory or file (default: reconcile.manifests in the config)')
    .option('--allow-empty', 'accept a set with no documents')
    .option('--json', 'print the steps as JSON')
    .option('--explain', 'also say which files made each object (with [device]: its base/, groups/ and devices/<name>/ files, in order)')
    .action(
      run(async (ctx, opts: { file?: string; allowEmpty?: boolean; json?: boolean; explain?: boolean }) => {
        const [{ openReconcileDeps }, { Reconciler }] = await Promise.all([import('./daemon-deps.ts'), import('../reconcile/reconciler.ts')]);
        // No start-up recovery: what looks half-made may be a running daemon's work in progress.
        const deps = await openReconcileDeps(ctx, { recovery: false });
        try {
          const [{ foreseeRefusal }, { withForesight }] = await Promise.all([import('../reconcile/containers.ts'), import('../reconcile/foresight.ts')]);
          const view = await new Reconciler(deps, { manifests: manifestsPath(ctx, opts), holder: 'berth plan', allowEmpty: opts.allowEmpty }).plan(ctx.signal);
          view.steps = await withForesight(view.steps, (doc) => foreseeRefusal(deps, doc, ctx.signal));
          if (view.problems.length) {
            for (const p of view.problems) process.stderr.write(`${formatProblem(p)}\n`);
            throw new ExitCode(1);
          }
          const changed = view.steps.flatMap((s) => (s.kind === 'create' || s.kind === 'recreate' ? [s.doc] : []));
          for (const w of containerWarnings(changed)) process.stderr.write(`${formatProblem(w)}\n`);
          if (opts.json)
            ctx.out.write(
              `${JSON.stringify(
                view.steps.map(({ ...s }) => ('doc' in s ? { ...s, doc: undefined } : s)),
                null,
                2,
              )}\n`,
            );
          else ctx.out.write(`${describePlan(view.steps)}\n`);
          if (opts.explain) ctx.out.write(await explainOrigins(manifestsPath(ctx, opts), ctx.config.device, ctx.signal));
          if (view.steps.some(isChange)) throw new ExitCode(2);
        } finally {
          await deps.close();
        }
      }),
    );
};
