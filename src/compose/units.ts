/**
 * Compose's compact notations, read as Docker reads them: byte sizes (`512m`, `1gb`: powers of
 * 1024, docker/go-units' RAMInBytes), and the short volume syntax `SOURCE:TARGET[:MODE]`.
 */
import { invalidArgument } from '../errors.ts';

const RAM = /^(\d+(?:\.\d+)?) ?([kKmMgGtTpP])?[iI]?[bB]?$/;
const POWERS: Record<string, number> = { k: 1, m: 2, g: 3, t: 4, p: 5 };

/** Bytes of a Compose size (`mem_limit`, `shm_size`, …): a number of bytes, or `300m`, `1.5g`, `64MiB`. */
export function composeBytes(v: string | number): number {
  if (typeof v === 'number') {
    if (!Number.isInteger(v) || v < 0) throw invalidArgument(`${v} is not a number of bytes`);
    return v;
  }
  const m = RAM.exec(v.trim());
  if (!m) throw invalidArgument(`"${v}" is not a size (a number of bytes, or with a unit: 512k, 300m, 1g)`);
  return Math.round(Number(m[1]) * 1024 ** (m[2] ? POWERS[m[2].toLowerCase()]! : 0));
}

/** A size as berth writes it: `64Mi` when it is a whole number of Ki, Mi or Gi, else the bytes. */
export function berthSize(bytes: number): string | number {
  for (const [unit, power] of [
    ['Gi', 3],
    ['Mi', 2],
    ['Ki', 1],
  ] as const) {
    if (bytes > 0 && bytes % 1024 ** power === 0) return `${bytes / 1024 ** power}${unit}`;
  }
  return bytes;
}

export type ShortVolume =
  | { kind: 'volume'; name: string; target: string; modes: string[] }
  | { kind: 'bind'; source: string; target: string; modes: string[] }
  | { kind: 'anonymous'; target: string; modes: string[] };

/**
 * `data:/var/lib/x:ro` (a named volume), `./conf:/etc/x` or `/srv:/srv:rw` (a bind mount: the
 * source is a path when it starts with `/`, `.` or `~`), `/var/cache` alone (an anonymous volume).
 */
export function parseShortVolume(spec: string): ShortVolume {
  const parts = spec.split(':');
  if (parts.length === 1) return { kind: 'anonymous', target: parts[0]!, modes: [] };
  if (parts.length > 3) throw invalidArgument(`"${spec}" is not SOURCE:TARGET[:MODE]`);
  const [source, target, mode] = parts as [string, string, string | undefined];
  const modes = mode ? mode.split(',') : [];
  if (source === '') throw invalidArgument(`"${spec}": the source is empty`);
  if (/^[/.~]/.test(source)) return { kind: 'bind', source, target, modes };
  return { kind: 'volume', name: source, target, modes };
}
