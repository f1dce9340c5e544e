/**
 * `berth gc [--dry-run] [--volumes] [--json]`: show what nothing references (blobs, snapshots,
 * ingests, and with --volumes unused named volumes) and its size; remove it unless --dry-run.
 *
 * A real collection takes the reconcile lock first (waiting up to --wait), so it never races an
 * `apply` or a daemon turn that is writing records; a dry run only reads.
 */
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { parseDuration } from '../config/units.ts';
import { openContentStore } from '../content/local-store.ts';
import { collectGarbage, type GcReport } from '../gc/collect.ts';
import { formatBytes } from '../format-bytes.ts';
import { RECONCILE_LOCK, withLock } from '../metadata/lock.ts';
import { Metadata } from '../metadata/metadata.ts';
import { openSnapshotter, snapshotterRoot, type SnapshotterName } from '../snapshots/select.ts';
import type { Snapshotter } from '../snapshots/snapshotter.ts';
import type { RegisterVerb } from './verbs.ts';

interface GcFlags {
  dryRun?: boolean;
  volumes?: boolean;
  json?: boolean;
  force?: boolean;
  wait: string;
}

export const register: RegisterVerb = (program, run) => {
  program
    .command('gc')
    .description('remove blobs, snapshots and ingests nothing references (named volumes only with --volumes)')
    .option('--dry-run', 'only show what would be removed')
    .option('--volumes', 'also remove named volumes no container uses and the current generation does not declare')
    .option('--json', 'print the report as JSON')
    .option('--force', 'sweep even if the metadata holds no record at all (as after losing metadata.db)')
    .option('--wait <duration>', 'how long to wait for a running apply or daemon turn to release the reconcile lock', '30s')
    .action(
      run(async (ctx, flags: GcFlags) => {
        const root = ctx.config.root;
        const waitMs = parseDuration(flags.wait, '--wait');
        const metadata = Metadata.open(join(root, 'metadata.db'));
        const snapshotters: Snapshotter[] = [];
        try {
          const content = await openContentStore(root);
          // Every snapshotter that has ever stored something here: after a switch from one to the
          // other, the old one's snapshots are garbage too.
          for (const name of ['overlayfs', 'native'] as SnapshotterName[]) {
            if (existsSync(snapshotterRoot(root, name))) {
              // No recover(): a daemon may be unpacking right now; its half-made snapshots are its own.
              snapshotters.push(await openSnapshotter(root, name, { signal: ctx.signal, recover: false }));
            }
          }
          const collect = (signal: AbortSignal) =>
            collectGarbage({
              metadata,
              content,
              snapshotters,
              dryRun: flags.dryRun ?? false,
              volumes: flags.volumes ?? false,
              volumesDir: join(root, 'volumes'),
              force: flags.force ?? false,
              signal,
              // The report is printed; its info-level log line would only repeat it on stderr.
              log: ctx.log.level === 'info' ? ctx.log.child({}, { level: 'warn' }) : ctx.log,
            });
          const report = flags.dryRun
            ? await collect(ctx.signal)
            : await withLock(metadata, RECONCILE_LOCK, { holder: 'berth gc', waitMs, signal: ctx.signal }, collect);
          ctx.out.write(flags.json ? `${JSON.stringify(report, null, 2)}\n` : formatReport(report));
        } finally {
          for (const s of snapshotters) await s.close().catch(() => {});
          metadata.close();
        }
      }),
    );
};

/** The report as a table people read: one line per item, then totals and warnings. */
export function formatReport(r: GcReport): string {
  const lines: string[] = [];
  if (r.items.length === 0) {
    lines.push('nothing to collect');
  } else {
    const rows = r.items.map((i) => [
      i.kind,
      i.snapshotter ? `${i.snapshotter}/${i.key}` : i.key,
      formatBytes(i.size),
      r.dryRun ? 'would remove' : i.removed ? 'removed' : `kept: ${i.error ?? 'unknown'}`,
    ]);
    const header = ['KIND', 'KEY', 'SIZE', 'RESULT'];
    const widths = header.map((h, c) => Math.max(h.length, ...rows.map((row) => row[c]!.length)));
    const fmt = (row: string[]) => row.map((cell, c) => (c === row.length - 1 ? cell : cell.padEnd(widths[c]!))).join('  ');
    lines.push(fmt(header), ...rows.map(fmt));
    lines.push('');
    lines.push(
      r.dryRun
        ? `${r.items.length} unreferenced, ${formatBytes(r.totalBytes)} would be freed (dry run)`
        : `${r.items.filter((i) => i.removed).length} of ${r.items.length} unreferenced removed, ${formatBytes(r.removedBytes)} freed`,
    );
  }
  const k = r.kept;
  lines.push(`kept (referenced): ${k.blob} blobs, ${k.snapshot} snapshots, ${k.ingest} ingests, ${k.volume} volumes`);
  for (const w of r.warnings) lines.push(`warning: ${w}`);
  return `${lines.join('\n')}\n`;
}
