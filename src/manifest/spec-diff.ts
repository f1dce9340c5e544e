/**
 * What changed between two normalised container specs, in plain words for a recreate's reason:
 * `env GREETING changed`, `image docker.io/library/busybox:1.36 → …:1.37`, `mount /data added`.
 */
import { canonicalJson, type NormalisedContainerSpec } from './spec-hash.ts';
import type { MountSpec } from './types.ts';

const RESOURCE_WORDS: Record<string, string> = { memoryBytes: 'memory limit', cpus: 'cpu limit', pids: 'pids limit' };

/** Each difference, in a stable order; empty when the specs mean the same. */
export function describeSpecChanges(before: NormalisedContainerSpec, after: NormalisedContainerSpec): string[] {
  const out: string[] = [];
  const same = (a: unknown, b: unknown) => canonicalJson(a) === canonicalJson(b);

  if (before.image !== after.image) out.push(`image ${before.image} → ${after.image}`);
  if (!same(before.command, after.command)) out.push('command changed');
  if (!same(before.args, after.args)) out.push('args changed');

  const envKeys = [...new Set([...Object.keys(before.env ?? {}), ...Object.keys(after.env ?? {})])].sort();
  for (const k of envKeys) {
    const a = before.env?.[k];
    const b = after.env?.[k];
    if (a === b) continue;
    out.push(a === undefined ? `env ${k} added` : b === undefined ? `env ${k} removed` : `env ${k} changed`);
  }

  const mountsBefore = new Map((before.mounts ?? []).map((m) => [m.target, m] as const));
  const mountsAfter = new Map((after.mounts ?? []).map((m) => [m.target, m] as const));
  for (const t of [...new Set([...mountsBefore.keys(), ...mountsAfter.keys()])].sort()) {
    const a: MountSpec | undefined = mountsBefore.get(t);
    const b: MountSpec | undefined = mountsAfter.get(t);
    if (!a) out.push(`mount ${t} added`);
    else if (!b) out.push(`mount ${t} removed`);
    else if (!same(a, b)) out.push(`mount ${t} changed`);
  }

  for (const k of [...new Set([...Object.keys(before.resources ?? {}), ...Object.keys(after.resources ?? {})])].sort()) {
    const a = (before.resources as Record<string, unknown> | undefined)?.[k];
    const b = (after.resources as Record<string, unknown> | undefined)?.[k];
    if (a !== b) out.push(`${RESOURCE_WORDS[k] ?? k} ${a === undefined ? 'added' : b === undefined ? 'removed' : 'changed'}`);
  }

  // Which secret's ciphertext changed (never what it says: berth does not know, and must not tell).
  for (const k of [...new Set([...Object.keys(before.secrets ?? {}), ...Object.keys(after.secrets ?? {})])].sort()) {
    const a = before.secrets?.[k];
    const b = after.secrets?.[k];
    if (a !== b) out.push(a === undefined ? `secret ${k} added` : b === undefined ? `secret ${k} removed` : `secret ${k} changed`);
  }

  const covered = new Set(['image', 'command', 'args', 'env', 'mounts', 'resources', 'secrets']);
  for (const k of [...new Set([...Object.keys(before), ...Object.keys(after)])].sort()) {
    if (covered.has(k)) continue;
    const a = (before as unknown as Record<string, unknown>)[k];
    const b = (after as unknown as Record<string, unknown>)[k];
    if (!same(a, b)) out.push(`${k} changed`);
  }
  return out;
}
