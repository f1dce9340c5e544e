/**
 * A berth document's metadata from a top-level Compose entry (a volume, a network): its berth name
 * and its `labels` (a list of `key=value` or a map), with where each came from.
 */
import type { ComposePath } from './interpolate-tree.ts';
import type { Origin } from './origins.ts';

export function objectMeta(
  name: string,
  labels: string[] | Record<string, string> | undefined,
  at: ComposePath,
): { metadata: Record<string, any>; origins: Origin[] } {
  const metadata: Record<string, any> = { name };
  const origins: Origin[] = [{ path: ['metadata', 'name'], from: at, key: true }];
  if (labels !== undefined) {
    metadata.labels = Array.isArray(labels) ? Object.fromEntries(labels.map((l) => [l.split('=')[0], l.split('=').slice(1).join('=')])) : labels;
    origins.push({ path: ['metadata', 'labels'], from: [...at, 'labels'] });
  }
  return { metadata, origins };
}
