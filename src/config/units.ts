/** Human units used in the config and manifests: sizes (`16Mi`, `1G`, `512`) and durations (`10s`, `1m30s`). */
import { invalidArgument } from '../errors.ts';

const SIZE_UNITS: Record<string, number> = {
  '': 1,
  k: 1e3,
  K: 1e3,
  M: 1e6,
  G: 1e9,
  T: 1e12,
  Ki: 1024,
  Mi: 1024 ** 2,
  Gi: 1024 ** 3,
  Ti: 1024 ** 4,
};

/** Parse a size in bytes: a number, or a string like `64Mi`, `1.5G`, `4096`. */
export function parseSize(value: string | number, what = 'size'): number {
  if (typeof value === 'number' && Number.isFinite(value) && value >= 0) return Math.floor(value);
  const m = /^\s*(\d+(?:\.\d+)?)\s*(k|K|M|G|T|Ki|Mi|Gi|Ti)?B?\s*$/.exec(String(value));
  if (!m) throw invalidArgument(`${what}: "${value}" is not a size (examples: 512, 64Mi, 1G)`);
  return Math.floor(Number(m[1]) * SIZE_UNITS[m[2] ?? '']!);
}

const DURATION_UNITS: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 };

/** Parse a duration in milliseconds: a number of seconds, or a string like `10s`, `1m30s`, `250ms`, `24h`. */
export function parseDuration(value: string | number, what = 'duration'): number {
  if (typeof value === 'number' && Number.isFinite(value) && value >= 0) return Math.round(value * 1000);
  const s = String(value).trim();
  const re = /(\d+(?:\.\d+)?)(ms|s|m|h|d)/gy;
  let total = 0;
  let matched = 0;
  for (let m = re.exec(s); m; m = re.exec(s)) {
    total += Number(m[1]) * DURATION_UNITS[m[2]!]!;
    matched = re.lastIndex;
  }
  if (s.length === 0 || matched !== s.length) {
    throw invalidArgument(`${what}: "${value}" is not a duration (examples: 10s, 1m30s, 250ms, 24h)`);
  }
  return Math.round(total);
}
