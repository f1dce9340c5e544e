/** `berth snapshots ls [--json]`: the configured snapshotter's snapshots: key, parent, kind, size. */
import type { RegisterVerb } from './verbs.ts';
import { openSnapshotter } from '../snapshots/select.ts';

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
            rows.push({ key: s.key, parent: s.parent ?? null, kind: s.kind, size: u.size, inodes: u.inodes, id: s.id, labels: s.labels, created: s.created.toISOString() });
          }
          if (flags.json) {
            ctx.out.write(`${JSON.stringify({ snapshotter: sn.name, snapshots: rows }, null, 2)}\n`);
            return;
          }
          const short = (k: string | null) => (k === null ? '' : k.startsWith('sha256:') ? k.slice(0, 19) : k);
          const table = [['KEY', 'PARENT', 'KIND', 'SIZE'], ...rows.map((r) => [short(r.key), short(r.parent), r.kind, human(r.size)])];
          const w = table[0]!.map((_, c) => Math.max(...table.map((r) => r[c]!.length)));
          for (const r of table) ctx.out.write(`${r.map((cell, c) => (c === r.length - 1 ? cell : cell.padEnd(w[c]!))).join('  ')}\n`);
        } finally {
          await sn.close();
        }
      }),
    );
};

function human(n: number): string {
  if (n < 0) return '?';
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let i = 0;
  let v = n;
  while (v >= 1024 && i < units.length - 1) {
    v /= 1024;
    i++;
  }
  return `${i === 0 ? v : v.toFixed(1)} ${units[i]}`;
}
