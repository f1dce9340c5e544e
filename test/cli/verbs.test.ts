/**
 * A command loads only its own verb's file (issue 14, idle memory): `berth run` must not keep the
 * code of pull, logs, network… resident for the life of the daemon. Help still lists every verb.
 */
import { execFile } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { promisify } from 'node:util';
import { expect, it } from 'vitest';
import { GLOBAL_VALUE_FLAGS } from '../../src/cli/main.ts';
import { VERBS } from '../../src/cli/verbs.ts';

/** The src/cli files a fresh node loads to run `main(argv)`, and what it printed. */
async function cliFilesLoadedBy(argv: string[]): Promise<{ files: string[]; stdout: string }> {
  const script = `
    import { registerHooks } from 'node:module';
    const loaded = [];
    registerHooks({ load(url, context, next) { loaded.push(url); return next(url, context); } });
    const { main } = await import('./src/cli/main.ts');
    await main(${JSON.stringify(argv)});
    console.log(JSON.stringify(loaded.filter((u) => u.includes('/src/cli/')).map((u) => u.slice(u.indexOf('/src/cli/') + 9))));`;
  const { stdout } = await promisify(execFile)(process.execPath, ['--disable-warning=ExperimentalWarning', '--input-type=module', '-e', script], {
    cwd: new URL('../../', import.meta.url).pathname,
  });
  const lines = stdout.trim().split('\n');
  return { files: JSON.parse(lines.at(-1)!) as string[], stdout: lines.slice(0, -1).join('\n') };
}

it('berth run loads run.ts and no other verb', async () => {
  const { files, stdout } = await cliFilesLoadedBy(['--root', '/nonexistent', 'run', '--help']);
  expect(stdout).toContain('Usage: berth run');
  expect(files).toContain('run.ts');
  for (const other of ['pull.ts', 'logs.ts', 'network.ts', 'gc.ts', 'status.ts', 'rollout.ts']) expect(files).not.toContain(other);
});

it('help lists every verb', async () => {
  const { stdout } = await cliFilesLoadedBy(['--help']);
  for (const name of VERBS.flatMap((v) => v.names.slice(0, 1))) expect(stdout).toMatch(new RegExp(`^  ${name}\\b`, 'm'));
});

it('finds the verb past the global flags and their values, even a value that names another verb', async () => {
  const { files, stdout } = await cliFilesLoadedBy(['--root', 'pull', '--log-level=warn', 'run', '--help']);
  expect(stdout).toContain('Usage: berth run');
  expect(files).toContain('run.ts');
  expect(files).not.toContain('pull.ts');
});

it("bin/berth skips the same global flags' values as main.ts when it looks for the run verb", () => {
  const launcher = readFileSync(new URL('../../bin/berth', import.meta.url), 'utf8');
  const skipped = /^\s*([-\w |]+)\) skip=1 ;;$/m.exec(launcher)?.[1];
  expect(skipped?.split('|').map((f) => f.trim())).toEqual(GLOBAL_VALUE_FLAGS);
});
