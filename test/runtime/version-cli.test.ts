/** `berth --version`: version, commit, Node version and the runtime found, through bin/berth. */
import { describe, expect, it } from 'vitest';
import { execFile } from 'node:child_process';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';

const BERTH = fileURLToPath(new URL('../../bin/berth', import.meta.url));
const TOP = fileURLToPath(new URL('../../', import.meta.url));
const exec = promisify(execFile);

describe('berth --version', () => {
  it('prints the package version, the git commit, the Node version and the runtime binary found', async () => {
    const { stdout } = await exec(BERTH, ['--config', '/nonexistent/config.toml', '--version'], { encoding: 'utf8' });
    const pkg = JSON.parse(await readFile(path.join(TOP, 'package.json'), 'utf8'));
    const head = (await exec('git', ['-C', TOP, 'rev-parse', 'HEAD'], { encoding: 'utf8' })).stdout.trim();
    const lines = stdout.trim().split('\n');
    expect(lines[0]).toBe(`berth ${pkg.version}`);
    // The build's stamp or the checkout's HEAD (bin/berth runs dist/ only when it is current).
    expect(lines[1]).toMatch(/^commit: [0-9a-f]{40} \((built|checkout)\)$/);
    if (lines[1]!.endsWith('(checkout)')) expect(lines[1]).toBe(`commit: ${head} (checkout)`);
    expect(lines[2]).toMatch(/^node: v24\.\d+\.\d+$/);
    const runc = (await exec('sh', ['-c', 'command -v runc'], { encoding: 'utf8' })).stdout.trim();
    expect(lines[3]).toMatch(new RegExp(`^runtime: ${runc} \\(runc version \\S+\\)$`));
    expect(lines).toHaveLength(4);
  });

  it('names the runtime the config chooses, and says when it is missing instead of failing', async () => {
    const dir = await mkdtemp(path.join(os.tmpdir(), 'berth-version-'));
    try {
      await writeFile(path.join(dir, 'config.toml'), '[runtime]\nbinary = "no-such-runtime"\n');
      const { stdout } = await exec(BERTH, ['--config', path.join(dir, 'config.toml'), '-V'], { encoding: 'utf8' });
      expect(stdout).toContain('runtime: no-such-runtime: not found\n');
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});
