/** `berth snapshots ls [--json]`: the configured snapshotter's snapshots: key, parent, kind, size. */
import { formatBytes } from '../format-bytes.ts';
import { openSnapshotter } from '../snapshots/select.ts';
import type { RegisterVerb } from './verbs.ts';

/** A usage the snapshotter could not measure is -1. */
const formatSize = (n: number) => (n < 0 ? '?' : formatBytes(n));

export const register: RegisterVerb = (program, run) => {
  const cmd = program.command('snapshots').description('inspect snapshots (unpacked layers, views)');
  cmd
    .command('ls')
    .description('list snapshots: key, parent, kind, size')
    .option('--json', 'print JSON')
    .action(
      run(async (ctx, flags: { json?: boolean }) => {
        // Listing must not disturb a pull in progress: no recover() here.
        const sn = await openSnapshotter(ctx.config.root, ctx.config.snapshotter, { signal: ctx.signal, recover: false });
        try {
          const rows = [];
          for await (const s of sn.walk()) {
            const u = await sn.usage(s.key).catch(() => ({ size: -1, inodes: 0 }));
            rows.push({
              key: s.key,
              parent: s.parent ?? null,
              kind: s.kind,
              size: u.size,
              inodes: u.inodes,
              id: s.id,
              labels: s.labels,
              created: s.created.toISOString(),
            });
          }
          if (flags.json) {
            ctx.out.write(`${JSON.stringify({ snapshotter: sn.name, snapshots: rows }, null, 2)}\n`);
            return;
          }
          const short = (k: string | null) => (k === null ? '' : k.startsWith('sha256:') ? k.slice(0, 19) : k);
          const table = [['KEY', 'PARENT', 'KIND', 'SIZE'], ...rows.map((r) => [short(r.key), short(r.parent), r.kind, formatSize(r.size)])];
          const w = table[0]!.map((_, c) => Math.max(...table.map((r) => r[c]!.length)));
          for (const r of table) ctx.out.write(`${r.map((cell, c) => (c === r.length - 1 ? cell : cell.padEnd(w[c]!))).join('  ')}\n`);
        } finally {
          await sn.close();
        }
      }),
    );
};
