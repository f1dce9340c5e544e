/**
 * `berth status [--json]`: per object Ready / Reconciling / Stalled with reason and message, the
 * generation last applied (and its git revision), and the latest events.
 */
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { Metadata } from '../metadata/metadata.ts';
import { statusTable } from './status-table.ts';
import type { RegisterVerb } from './verbs.ts';

const NOTHING_YET = 'no objects recorded yet (run berth apply or berth run)\n';

export const register: RegisterVerb = (program, run) => {
  program
    .command('status')
    .description('per-object state (Ready / Reconciling / Stalled), the applied generation, recent events')
    .option('--json', 'machine-readable output')
    .option('--events <n>', 'how many recent events to show', '10')
    .action(
      run(async (ctx, opts: { json?: boolean; events: string }) => {
        // A reader: a root without a database is reported empty, not created.
        const path = join(ctx.config.root, 'metadata.db');
        if (!existsSync(path)) {
          if (opts.json) ctx.out.write(`${JSON.stringify({ generation: null, latestGeneration: null, objects: [], events: [] }, null, 2)}\n`);
          else ctx.out.write(NOTHING_YET);
          return;
        }
        const metadata = Metadata.open(path);
        try {
          const objects = metadata.listStatus();
          const current = metadata.currentGeneration();
          const latest = metadata.latestGeneration();
          const events = metadata.listEvents({ limit: Number(opts.events) });
          if (opts.json) {
            const gen = (g: typeof current) => g && { id: g.id, revision: g.revision, result: g.result, message: g.message, appliedAt: g.appliedAt };
            ctx.out.write(`${JSON.stringify({ generation: gen(current), latestGeneration: gen(latest), objects, events }, null, 2)}\n`);
            return;
          }
          if (current)
            ctx.out.write(
              `applied generation ${current.id}${current.revision ? ` (revision ${current.revision})` : ''} at ${current.appliedAt.toISOString()}\n`,
            );
          if (latest && latest.id !== current?.id)
            ctx.out.write(`latest generation ${latest.id}: ${latest.result}${latest.message ? `: ${latest.message}` : ''}\n`);
          ctx.out.write(objects.length ? statusTable(objects) : NOTHING_YET);
          if (events.length) {
            ctx.out.write('\nrecent events:\n');
            for (const e of events)
              ctx.out.write(`${e.time.toISOString()}  ${e.type.padEnd(7)} ${e.object.kind}/${e.object.name}  ${e.reason}: ${e.message.split('\n')[0]}\n`);
          }
        } finally {
          metadata.close();
        }
      }),
    );
};
