import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readdirSync, readFileSync, readlinkSync } from 'node:fs';
import { mkdir, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { watchExits } from '../../src/runtime/exit-watch.ts';
import { tempDir, until } from './helpers.ts';

/** inotify watches this process holds. */
function inotifyWatches(): number {
  let n = 0;
  for (const fd of readdirSync('/proc/self/fd')) {
    try {
      if (!readlinkSync(`/proc/self/fd/${fd}`).includes('inotify')) continue;
      n += readFileSync(`/proc/self/fdinfo/${fd}`, 'utf8')
        .split('\n')
        .filter((l) => l.startsWith('inotify wd:')).length;
    } catch {}
  }
  return n;
}

describe('watchExits', () => {
  let dir: string;
  beforeAll(async () => {
    dir = await tempDir('exitwatch');
  });
  afterAll(async () => rm(dir, { recursive: true, force: true }));

  it('reports exit.json in existing and new container dirs, without watching inside their rootfs', async () => {
    for (let i = 0; i < 200; i++) await mkdir(path.join(dir, 'a/rootfs', `d${i}`, 'sub'), { recursive: true });
    const before = inotifyWatches();
    const seen: string[] = [];
    const w = watchExits(dir, (name) => seen.push(name));
    try {
      await new Promise((r) => setTimeout(r, 100));
      expect(inotifyWatches() - before).toBeLessThanOrEqual(3); // the containers dir + one per container
      await writeFile(path.join(dir, 'a/rootfs/d1/exit.json'), '{}'); // inside a rootfs: not an exit
      await writeFile(path.join(dir, 'a/exit.json'), '{}');
      await until(async () => seen.includes('a'), 5000, 'exit of a');
      await mkdir(path.join(dir, 'b'));
      await new Promise((r) => setTimeout(r, 50));
      await writeFile(path.join(dir, 'b/exit.json'), '{}');
      await until(async () => seen.includes('b'), 5000, 'exit of b');
      expect(seen.every((n) => n === 'a' || n === 'b')).toBe(true);
    } finally {
      w.close();
    }
  });
});
