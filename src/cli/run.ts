/**
 * `berth run -f DIR`: the daemon. Stops cleanly on SIGTERM/SIGINT; containers keep running (they
 * are supervised by their own shims) and the next `berth run` adopts them.
 */
import { join } from 'node:path';
import { formatOutcome } from './apply.ts';
import { statusTable } from './status-table.ts';
import type { RegisterVerb } from './verbs.ts';
import { manifestsPath } from './context.ts';

export const register: RegisterVerb = (program, run) => {
  program
    .command('run')
    .description('the daemon: watch the manifests, converge, repair drift, collect garbage')
    .option('-f, --file <path>', 'manifests directory or file (default: reconcile.manifests in the config)')
    .option('--allow-empty', 'accept a set with no documents (removes every container)')
    .action(
      run(async (ctx, opts: { file?: string; allowEmpty?: boolean }) => {
        const [{ openReconcileDeps }, { runDaemon }, { DAEMON_LOCK_WAIT_MS }] = await Promise.all([
          import('./daemon-deps.ts'),
          import('../reconcile/daemon.ts'),
          import('../reconcile/start-up-recovery.ts'),
        ]);
        // prom-client (and the OpenTelemetry API it brings) is loaded only when metrics are served.
        const metrics = ctx.config.metrics.address ? new (await import('../reconcile/metrics.ts')).Metrics() : undefined;
        const deps = await openReconcileDeps(ctx, { metrics, recovery: { holder: `berth run (pid ${process.pid})`, waitMs: DAEMON_LOCK_WAIT_MS } });
        const source = opts.file ? undefined : (await import('../source/daemon-source.ts')).daemonSource(deps, ctx.signal); // [source.git]
        let lastTable = '';
        const shownWaits = new Map<string, string>();
        try {
          await runDaemon(deps, {
            manifests: source?.manifests ?? manifestsPath(ctx, opts),
            onLoopReady: source?.attach,
            allowEmpty: opts.allowEmpty,
            signal: ctx.signal,
            onBackgroundOutcome: (o) => ctx.out.write(`${formatOutcome(o)}\n`),
            onTurn: (report) => {
              // Done and failed steps always; a step that waits or is blocked only when that changes.
              for (const o of report.outcomes) {
                const line = formatOutcome(o);
                if (o.result === 'ok' || o.result === 'failed') ctx.out.write(`${line}\n`);
                else if (shownWaits.get(o.step.id) !== line) {
                  shownWaits.set(o.step.id, line);
                  ctx.out.write(`${line}\n`);
                }
              }
              // Show where things stand whenever it changed: the containers coming up, then their status.
              const table = statusTable(deps.metadata.listStatus());
              if (table !== lastTable) {
                ctx.out.write(`\n${table}(root ${join(ctx.config.root)}; berth status for details, berth ps for tasks)\n\n`);
                lastTable = table;
              }
            },
          });
        } finally {
          await source?.stop();
          await deps.close();
        }
      }),
    );
};
