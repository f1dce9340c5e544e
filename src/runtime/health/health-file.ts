/**
 * `<root>/containers/<name>/health.json`: the health the daemon's monitor last recorded, for `ps`,
 * `inspect` and `status` (other processes). Written only when something a user would see changed
 * (health-state.ts `visiblyChanged`), so its `lastProbeAt` is that of the last such probe.
 */
import { existsSync } from 'node:fs';
import path from 'node:path';
import { writeFileAtomic } from '../../durable-file.ts';
import { containersDir, readJson, RECORD_FILE } from '../state.ts';
import type { HealthState } from './health-state.ts';

export const HEALTH_FILE = 'health.json';

export interface HealthFile extends HealthState {
  version: 1;
}

export function healthFilePath(root: string, name: string): string {
  return path.join(containersDir(root), name, HEALTH_FILE);
}

/**
 * Record `state`. Skipped when the container is gone (its record removed): writing would recreate
 * a directory that a delete just removed. Losing it in a power cut is harmless (the next probe
 * writes it again), so the directory is not fsynced.
 */
export async function writeHealthFile(root: string, name: string, state: HealthState): Promise<boolean> {
  if (!existsSync(path.join(containersDir(root), name, RECORD_FILE))) return false;
  const file: HealthFile = { version: 1, ...state };
  await writeFileAtomic(healthFilePath(root, name), JSON.stringify(file, null, 2), { syncDir: false });
  return true;
}

/** The recorded health, or undefined if none was recorded. */
export async function readHealthFile(root: string, name: string): Promise<HealthFile | undefined> {
  return readJson<HealthFile>(healthFilePath(root, name));
}

/**
 * The health to show for a container whose current task started at `taskStartedAtMs` (undefined:
 * no task running): only a record about that very task counts; an older one is stale.
 */
export async function currentHealth(root: string, name: string, taskStartedAtMs: number | undefined): Promise<HealthFile | undefined> {
  if (taskStartedAtMs === undefined) return undefined;
  const h = await readHealthFile(root, name).catch(() => undefined);
  return h && h.taskStartedAtMs === taskStartedAtMs ? h : undefined;
}
