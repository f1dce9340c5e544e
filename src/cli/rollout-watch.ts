/**
 * What `berth apply` and `berth reconcile` do after their first turn: more turns while the plan
 * asks for them and, with `wait`, the rollout watched (health probed meanwhile) until its new
 * containers are confirmed or the generation is rolled back. A rollback is printed with its reason
 * and fails the command.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import type { ContainerProbes } from '../reconcile/container-probes.ts';
import type { Reconciler, TurnReport } from '../reconcile/reconciler.ts';
import { ExitCode, type CliContext } from './context.ts';

export async function watchRollout(ctx: CliContext, reconciler: Reconciler, probes: ContainerProbes, first: TurnReport, wait: boolean): Promise<TurnReport> {
  let report = first;
  let said = '';
  // Also while a container waits for a dependency's health check that has yet to decide.
  while (report.again || (wait && (report.rollout?.state === 'progressing' || (await probes.deciding(report.desired, report.steps, ctx.signal))))) {
    const line = report.rollout ? `rollout: generation ${report.rollout.generation} ${report.rollout.state}: ${report.rollout.message}` : '';
    if (line && line !== said) ctx.out.write(`${(said = line)}\n`);
    await probes.sync(report.desired, ctx.signal);
    // Look again soon: an exit or a probe verdict can come before the deadline, and the
    // sooner a failed rollout is seen, the sooner the old app is back.
    if (!report.again) await sleep(Math.min(250, Math.max(50, (report.rollout?.wakeAt ?? Date.now() + 250) - Date.now())), undefined, { signal: ctx.signal });
    report = await reconciler.turn(ctx.signal);
  }
  if (report.rollout?.state === 'rolledback') {
    ctx.out.write(`ROLLED BACK generation ${report.rollout.generation}: ${report.rollout.message}\n`);
    ctx.out.write(`running generation ${report.generation?.id ?? '-'} (the last confirmed); berth rollout retry tries again\n`);
    throw new ExitCode(1);
  }
  if (report.rollout?.state === 'confirmed') ctx.out.write(`rollout: ${report.rollout.message}\n`);
  return report;
}
