/** Byte counts for people: `0 B`, `812 B`, `4.0 KiB`, `12.3 MiB` (binary units, like `du -h`). */
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
