/**
 * `berth --version`: berth's version (package.json), the git commit it was built from (the stamp
 * scripts/build.sh writes into dist/, else `git rev-parse` when it runs from a checkout), the Node
 * it runs on and the OCI runtime it would use. Every part that cannot be found says so; it never fails.
 */
import { execFile } from 'node:child_process';
import { constants } from 'node:fs';
import { access, readFile } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { loadConfig } from '../config/config.ts';

const run = promisify(execFile);
/** The top of the tree this file runs from: src/cli/ or dist/cli/ → two levels up. */
const TOP = fileURLToPath(new URL('../../', import.meta.url));
const FROM_DIST = path.basename(path.dirname(path.dirname(fileURLToPath(import.meta.url)))) === 'dist';

async function packageVersion(): Promise<string> {
  try {
    return JSON.parse(await readFile(path.join(TOP, 'package.json'), 'utf8')).version ?? 'unknown';
  } catch {
    return 'unknown';
  }
}

async function commit(): Promise<string> {
  if (FROM_DIST) {
    const stamp = (await readFile(path.join(TOP, 'dist', '.build-stamp'), 'utf8').catch(() => '')).trim();
    if (/^[0-9a-f]{7,40}(-dirty)?$/.test(stamp)) return `${stamp} (built)`;
  }
  try {
    const { stdout } = await run('git', ['-C', TOP, 'rev-parse', 'HEAD'], { timeout: 5000 });
    return `${stdout.trim()} (checkout)`;
  } catch {
    return 'unknown';
  }
}

/** The runtime binary as the config names it, found on PATH, and its version line. */
async function runtime(configPath: string): Promise<string> {
  const name = await loadConfig(configPath).then(
    (c) => c.runtime.binary,
    () => 'runc',
  );
  const dirs = name.includes('/') ? [''] : [...(process.env.PATH ?? '').split(':'), '/usr/sbin', '/usr/bin', '/sbin', '/bin'];
  for (const d of dirs) {
    const file = d ? path.join(d, name) : name;
    if (
      !(await access(file, constants.X_OK).then(
        () => true,
        () => false,
      ))
    )
      continue;
    const version = await run(file, ['--version'], { timeout: 5000 }).then(
      (r) => r.stdout.split('\n')[0]!.trim(),
      () => 'version unknown',
    );
    return `${file} (${version})`;
  }
  return `${name}: not found`;
}

export async function versionText(configPath: string): Promise<string> {
  const [version, rev, rt] = await Promise.all([packageVersion(), commit(), runtime(configPath)]);
  return `berth ${version}\ncommit: ${rev}\nnode: ${process.version}\nruntime: ${rt}\n`;
}
