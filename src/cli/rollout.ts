/**
 * `berth rollout status|history|undo|retry`: the generations a device went through, the one being
 * confirmed, and the two ways a person steers: go back to a known-good generation and hold it, or
 * try a rolled-back desired state again. These only write intent to the metadata; the daemon (or
 * the next `berth apply`) acts on it at its next turn.
 */
import { join } from 'node:path';
import { invalidArgument, notFound } from '../errors.ts';
import { Metadata, type Generation, type GenerationResult } from '../metadata/metadata.ts';
import { ROLLOUT_HOLD, type RolloutHold } from '../reconcile/rollout.ts';
import type { RegisterVerb } from './verbs.ts';

const RESULT_NAME: Record<GenerationResult, string> = {
  pending: 'Pending',
  progressing: 'Progressing',
  applied: 'Confirmed',
  failed: 'Failed',
  rolledback: 'RolledBack',
};

function describe(g: Generation): Record<string, unknown> {
  return {
    generation: g.id,
    revision: g.revision ?? null,
    result: RESULT_NAME[g.result],
    at: g.appliedAt.toISOString(),
    changed: g.changed,
    ...(g.progressingSince ? { progressingSince: g.progressingSince.toISOString() } : {}),
    ...(g.message ? { reason: g.message } : {}),
  };
}

function openMetadata(root: string): Metadata {
  return Metadata.open(join(root, 'metadata.db'));
}

export const register: RegisterVerb = (program, run) => {
  const rollout = program.command('rollout').description('generations: the one being confirmed, history, undo and retry');

  rollout
    .command('status')
    .description('the generation in progress: what is being confirmed, and the last confirmed one')
    .option('--json', 'machine-readable output')
    .action(
      run(async (ctx, opts: { json?: boolean }) => {
        const metadata = openMetadata(ctx.config.root);
        try {
          const latest = metadata.latestGeneration();
          const confirmed = metadata.currentGeneration();
          const status = metadata.getStatus('Rollout', 'current');
          const hold = metadata.getSetting(ROLLOUT_HOLD);
          if (opts.json) {
            ctx.out.write(
              `${JSON.stringify({ latest: latest && describe(latest), confirmed: confirmed && describe(confirmed), status: status ?? null, hold: hold ? JSON.parse(hold) : null }, null, 2)}\n`,
            );
            return;
          }
          if (!latest) {
            ctx.out.write('no generation yet (run berth apply or berth run)\n');
            return;
          }
          ctx.out.write(`generation ${latest.id}: ${RESULT_NAME[latest.result]}${latest.message ? ` (${latest.message})` : ''}\n`);
          if (latest.changed.length) ctx.out.write(`  changed: ${latest.changed.join(', ')}\n`);
          if (status && latest.result === 'progressing') ctx.out.write(`  ${status.message}\n`);
          if (confirmed && confirmed.id !== latest.id)
            ctx.out.write(`last confirmed: generation ${confirmed.id}${confirmed.revision ? ` (revision ${confirmed.revision})` : ''}\n`);
          if (hold) ctx.out.write(`held at generation ${(JSON.parse(hold) as RolloutHold).generation} (berth rollout retry releases it)\n`);
        } finally {
          metadata.close();
        }
      }),
    );

  rollout
    .command('history')
    .description('generations, newest first: number, revision, result, reason')
    .option('--json', 'machine-readable output')
    .option('-n, --limit <n>', 'how many', '20')
    .action(
      run(async (ctx, opts: { json?: boolean; limit: string }) => {
        const metadata = openMetadata(ctx.config.root);
        try {
          const gens = metadata.listGenerations(Number(opts.limit)).map(describe);
          if (opts.json) {
            ctx.out.write(`${JSON.stringify(gens, null, 2)}\n`);
            return;
          }
          ctx.out.write(`${'GEN'.padEnd(5)} ${'RESULT'.padEnd(12)} ${'REVISION'.padEnd(12)} ${'AT'.padEnd(24)} REASON\n`);
          for (const g of gens) {
            const rev = typeof g.revision === 'string' ? g.revision.slice(0, 10) : '-';
            ctx.out.write(`${String(g.generation).padEnd(5)} ${String(g.result).padEnd(12)} ${rev.padEnd(12)} ${String(g.at).padEnd(24)} ${g.reason ?? ''}\n`);
          }
        } finally {
          metadata.close();
        }
      }),
    );

  rollout
    .command('undo')
    .description('go back to generation N (default: the last confirmed one) and hold it until the manifests change or berth rollout retry')
    .option('--to <n>', 'the generation to go back to')
    .action(
      run(async (ctx, opts: { to?: string }) => {
        const metadata = openMetadata(ctx.config.root);
        try {
          const target = opts.to === undefined ? metadata.currentGeneration() : metadata.getGeneration(parseGeneration(opts.to));
          if (!target)
            throw notFound(
              opts.to === undefined ? 'no confirmed generation to go back to' : `generation ${opts.to} not found (berth rollout history lists them)`,
            );
          const latest = metadata.latestGeneration();
          const hold: RolloutHold = { generation: target.id, manifestsHash: latest?.desiredHash ?? null };
          metadata.setSetting(ROLLOUT_HOLD, JSON.stringify(hold));
          metadata.addEvent({
            object: { kind: 'Generation', name: String(target.id) },
            type: 'Normal',
            reason: 'Held',
            message: `berth rollout undo: holding generation ${target.id}`,
          });
          ctx.out.write(
            `holding generation ${target.id}: berth run applies it at its next turn (or run berth apply); it is held until the manifests change or berth rollout retry\n`,
          );
        } finally {
          metadata.close();
        }
      }),
    );

  rollout
    .command('retry')
    .description('release a hold and try the rolled-back desired state again')
    .action(
      run(async (ctx) => {
        const metadata = openMetadata(ctx.config.root);
        try {
          const released = metadata.getSetting(ROLLOUT_HOLD) !== undefined;
          metadata.deleteSetting(ROLLOUT_HOLD);
          const latest = metadata.latestGeneration();
          if (latest?.result === 'rolledback') {
            metadata.setGenerationResult(latest.id, 'pending');
            metadata.addEvent({
              object: { kind: 'Generation', name: String(latest.id) },
              type: 'Normal',
              reason: 'Retry',
              message: `berth rollout retry: generation ${latest.id} will be applied again`,
            });
            ctx.out.write(`generation ${latest.id} will be applied again at the next turn${released ? ' (hold released)' : ''}\n`);
          } else if (released) ctx.out.write('hold released: the manifests apply again at the next turn\n');
          else ctx.out.write('nothing to retry: no rolled-back generation and no hold\n');
        } finally {
          metadata.close();
        }
      }),
    );
};

function parseGeneration(value: string): number {
  const n = Number(value);
  if (!Number.isInteger(n) || n < 1) throw invalidArgument(`--to: "${value}" is not a generation number`);
  return n;
}
