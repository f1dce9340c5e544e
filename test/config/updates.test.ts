import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { loadConfig } from '../../src/config/config.ts';
import { BerthError } from '../../src/errors.ts';

const dirs: string[] = [];
afterAll(async () => {
  for (const d of dirs) await rm(d, { recursive: true, force: true });
});

async function load(text: string) {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'berth-config-updates-'));
  dirs.push(dir);
  const file = path.join(dir, 'config.toml');
  await writeFile(file, text);
  return { file, config: loadConfig(file) };
}

async function loadError(text: string): Promise<{ file: string; err: BerthError }> {
  const { file, config } = await load(text);
  const err = await config.catch((e) => e);
  expect(err).toBeInstanceOf(BerthError);
  expect(err.kind).toBe('InvalidArgument');
  return { file, err };
}

describe('config [updates]', () => {
  it('defaults: no windows (always open), no hold limit, the lock at /run/berth/lock', async () => {
    const c = await loadConfig('/nonexistent/berth/config.toml');
    expect(c.updates).toEqual({ windows: [], maxLockHoldMs: undefined, lockPath: '/run/berth/lock' });
  });

  it('reads windows, max_lock_hold and lock_path', async () => {
    const c = await (
      await load(`
[updates]
windows = ["Mon-Fri 02:00-04:00", "Sat 00:00-06:00", "Sun 22:00-02:00"]
max_lock_hold = "2h"
lock_path = "/var/run/app/update.lock"
`)
    ).config;
    expect(c.updates.windows).toEqual([
      { text: 'Mon-Fri 02:00-04:00', days: [1, 2, 3, 4, 5], startMinute: 120, endMinute: 240 },
      { text: 'Sat 00:00-06:00', days: [6], startMinute: 0, endMinute: 360 },
      { text: 'Sun 22:00-02:00', days: [7], startMinute: 1320, endMinute: 120 },
    ]);
    expect(c.updates.maxLockHoldMs).toBe(2 * 3600_000);
    expect(c.updates.lockPath).toBe('/var/run/app/update.lock');
  });

  it('a malformed window is an error naming the key, its index and the bad string', async () => {
    const { file, err } = await loadError('[updates]\nwindows = ["Sat 00:00-06:00", "Mon-Fry 02:00-04:00"]\n');
    expect(err.message).toContain(`${file}: key "updates.windows[1]": "Mon-Fry 02:00-04:00" is not an update window: unknown day "Fry"`);
  });

  it.each([
    ['[updates]\nwindow = ["Mon 01:00-02:00"]\n', 'unknown key "updates.window"'],
    ['[updates]\nwindows = "Mon 01:00-02:00"\n', 'key "updates.windows" must be array'],
    ['[updates]\nwindows = [3]\n', 'key "updates.windows.0" must be string'],
    ['[updates]\nmax_lock_hold = true\n', 'key "updates.max_lock_hold"'],
    ['[updates]\nmax_lock_hold = "a while"\n', 'key "updates.max_lock_hold": "a while" is not a duration'],
    ['[updates]\nlock_path = 7\n', 'key "updates.lock_path" must be string'],
    ['[updates]\nlock_path = "run/berth/lock"\n', 'key "updates.lock_path": "run/berth/lock" must be an absolute, normalised path'],
    ['[updates]\nlock_path = "/run/../etc/passwd"\n', 'key "updates.lock_path": "/run/../etc/passwd" must be an absolute, normalised path'],
    ['[updates]\nlock_path = "/"\n', 'key "updates.lock_path": "/" must be'],
  ])('%j is an error naming the key', async (text, message) => {
    const { err } = await loadError(text);
    expect(err.message).toContain(message);
  });
});
