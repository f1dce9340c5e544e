/** Rendering object status (`berth status`, and `berth run` on a terminal) as an aligned table. */
import { compareText } from '../compare-text.ts';
import type { ObjectStatus } from '../metadata/metadata.ts';

export function formatTable(rows: string[][]): string {
  const widths = rows[0]!.map((_, i) => Math.max(...rows.map((r) => (r[i] ?? '').length)));
  return rows.map((r) => r.map((c, i) => (i === r.length - 1 ? c : c.padEnd(widths[i]!))).join('  ')).join('\n') + '\n';
}

export function statusTable(statuses: ObjectStatus[]): string {
  const order = ['Manifests', 'Volume', 'Image', 'Container'];
  const sorted = [...statuses].sort((a, b) => order.indexOf(a.kind) - order.indexOf(b.kind) || compareText(a.name, b.name));
  const rows = [['KIND', 'NAME', 'STATE', 'REASON', 'MESSAGE']];
  for (const s of sorted) rows.push([s.kind, s.name, s.state, s.reason, s.message.split('\n')[0]!.slice(0, 100)]);
  return formatTable(rows);
}
