/** Small formatting helpers shared by the image verbs (no heavy imports: verbs load these eagerly). */

/** 1234567 → "1.2 MB" (decimal units, as registries and docker print sizes). */
export function humanBytes(n: number): string {
  const units = ['B', 'kB', 'MB', 'GB', 'TB'];
  let i = 0;
  let v = n;
  while (v >= 1000 && i < units.length - 1) {
    v /= 1000;
    i++;
  }
  return `${i === 0 ? v : v.toFixed(1)} ${units[i]}`;
}

/** `sha256:0123456789ab…` → `0123456789ab` (docker's short id). */
export function shortDigest(d: string): string {
  return d.replace(/^sha256:/, '').slice(0, 12);
}
