/**
 * Files that hold passwords and that others can read: the berth config when a registry host has
 * a `password`, and the Docker config.json when it has `auths` entries. berth still runs (the
 * file may be on a read-only image), but says so, as ssh does for a loose private key.
 */
import { readFile, stat } from 'node:fs/promises';
import type { Config } from './config.ts';

export interface LooseSecretFile {
  path: string;
  /** Permission bits, e.g. 0o644. */
  mode: number;
  holds: string;
}

/** Group or world permission bits on `path`, or undefined if it is owner-only or missing. */
async function looseMode(path: string): Promise<number | undefined> {
  try {
    const mode = (await stat(path)).mode & 0o777;
    return mode & 0o077 ? mode : undefined;
  } catch {
    return undefined;
  }
}

async function dockerConfigHasAuths(path: string): Promise<boolean> {
  try {
    const auths = JSON.parse(await readFile(path, 'utf8'))?.auths;
    return auths !== null && typeof auths === 'object' && Object.keys(auths).length > 0;
  } catch {
    return false;
  }
}

export async function looseSecretFiles(config: Config, configPath: string): Promise<LooseSecretFile[]> {
  const out: LooseSecretFile[] = [];
  const passwords = Object.entries(config.registry.hosts)
    .filter(([, h]) => h.password !== undefined)
    .map(([name]) => name);
  const configMode = passwords.length ? await looseMode(configPath) : undefined;
  if (configMode !== undefined) out.push({ path: configPath, mode: configMode, holds: `registry passwords (${passwords.join(', ')})` });
  const dockerMode = await looseMode(config.registry.dockerConfig);
  if (dockerMode !== undefined && (await dockerConfigHasAuths(config.registry.dockerConfig))) {
    out.push({ path: config.registry.dockerConfig, mode: dockerMode, holds: 'registry credentials (auths)' });
  }
  return out;
}
