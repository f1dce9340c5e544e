/**
 * How a bench starts berth: `bin/berth` as a user does, or, to price node flags, berth's entry point
 * under the pinned node with those flags instead of bin/berth's (`dist/` when it is newer than every
 * source, as bin/berth decides, else the TypeScript sources).
 */
import { existsSync } from 'node:fs';
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';

export function berthCommand(top: string, nodeFlags: string): string[] {
  if (!nodeFlags) return [join(top, 'bin/berth')];
  const built =
    existsSync(join(top, 'dist/cli/main.js')) &&
    spawnSync('find', [join(top, 'src'), '-newer', join(top, 'dist/.build-stamp'), '-print', '-quit'], { encoding: 'utf8' }).stdout === '';
  return [
    join(top, 'node_modules/.bin/node'),
    '--disable-warning=ExperimentalWarning',
    ...nodeFlags.split(' ').filter(Boolean),
    join(top, built ? 'dist/cli/main.js' : 'src/cli/main.ts'),
  ];
}
