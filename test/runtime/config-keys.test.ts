/** The `[runtime]` keys for container defaults: pids_limit and init_binary. */
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadConfig } from '../../src/config/config.ts';
import { isKind } from '../../src/errors.ts';

let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(path.join(os.tmpdir(), 'berth-config-keys-'));
});
afterAll(async () => rm(dir, { recursive: true, force: true }));

const load = async (text: string) => {
  const file = path.join(dir, `c-${Math.random().toString(36).slice(2)}.toml`);
  await writeFile(file, text);
  return loadConfig(file);
};

describe('[runtime] pids_limit and init_binary', () => {
  it('default to 2048 pids and the runtime default init; both can be set; 0 means no limit', async () => {
    expect((await load('')).runtime).toMatchObject({ pidsLimit: 2048, initBinary: undefined });
    expect((await load('[runtime]\npids_limit = 100\ninit_binary = "/opt/tini"\n')).runtime).toMatchObject({ pidsLimit: 100, initBinary: '/opt/tini' });
    expect((await load('[runtime]\npids_limit = 0\n')).runtime.pidsLimit).toBe(0);
  });
  it('a negative limit is an error naming the key', async () => {
    const err = await load('[runtime]\npids_limit = -1\n').then(
      () => undefined,
      (e) => e,
    );
    expect(isKind(err, 'InvalidArgument'), String(err)).toBe(true);
    expect(err.message).toContain('pids_limit');
  });
});
