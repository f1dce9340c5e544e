/**
 * Byte counts for people, the one formatter berth prints sizes with: IEC binary units (1 KiB =
 * 1024 B), as `du -h`, `ls -lh` and the kernel do, and as berth's own size settings and limits are
 * written (`gc.reserve`, the 1.5 MiB manifest limit). Not the decimal kB/MB that docker prints: one
 * tool showing one size two ways is worse than either.
 *
 * `0 B`, `812 B`, `4.0 KiB`, `12.3 MiB`.
 */
export function formatBytes(n: number): string {
  if (!Number.isFinite(n)) return String(n);
  const sign = n < 0 ? '-' : '';
  let v = Math.abs(n);
  if (v < 1024) return `${sign}${v} B`;
  const units = ['KiB', 'MiB', 'GiB', 'TiB'];
  let i = -1;
  while (v >= 1024 && i < units.length - 1) {
    v /= 1024;
    i++;
  }
  return `${sign}${v.toFixed(1)} ${units[i]}`;
}
