/** Small formatting helpers shared by the image verbs (no heavy imports: verbs load these eagerly). */

/** `sha256:0123456789ab…` → `0123456789ab` (docker's short id). */
export function shortDigest(d: string): string {
  return d.replace(/^sha256:/, '').slice(0, 12);
}
