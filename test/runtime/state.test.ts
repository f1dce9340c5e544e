/** The runtime's record (state.json): only what the runtime acts on, and older records still read. */
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { newContainerRecord, readContainerRecord } from '../../src/runtime/state.ts';
import { request, spec } from './helpers.ts';

let dir: string;
beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'berth-state-'));
});
afterEach(async () => rm(dir, { recursive: true, force: true }));

const where = { runtime: 'runc', runtimeRoot: '/run/berth/runc', cgroupsPath: '/berth/web', createdAt: '2026-01-01T00:00:00.000Z' };

describe('the container record', () => {
  it("keeps the facts the runtime acts on, not the manifest spec (the user's intent is metadata.db's)", () => {
    const req = request('web', [], { network: 'none', stopSignal: 'SIGINT', stopGracePeriodMs: 3000, tty: true, env: { SECRET: 'x' }, labels: { team: 'a' } });
    const r = newContainerRecord(req, where);
    expect(r).toMatchObject({ version: 2, network: 'none', stopSignal: 'SIGINT', stopGracePeriodMs: 3000, tty: true, restartCount: 0, backoffStreak: 0 });
    expect(JSON.stringify(r)).not.toContain('SECRET');
    expect(r).not.toHaveProperty('spec');
  });

  it("reads a record an older berth wrote (version 1, with the spec and the task monitor's fields) as version 2", async () => {
    const file = join(dir, 'state.json');
    const { version: _v, network: _n, stopSignal: _s, stopGracePeriodMs: _g, ...rest } = newContainerRecord(request('web', []), where);
    const legacy = {
      ...rest,
      version: 1,
      spec: spec({ network: 'none', stopSignal: 'SIGQUIT', stopGracePeriodMs: 7000 }),
      nextRestartAt: '2026-01-01T00:00:10.000Z',
      restartDecision: 'exited 0',
    };
    await writeFile(file, JSON.stringify(legacy));
    const r = await readContainerRecord(file);
    expect(r).toMatchObject({ version: 2, name: 'web', network: 'none', stopSignal: 'SIGQUIT', stopGracePeriodMs: 7000 });
    expect(r).not.toHaveProperty('spec');
    expect(r).not.toHaveProperty('nextRestartAt');
    expect(r).not.toHaveProperty('restartDecision');
    expect(await readContainerRecord(join(dir, 'none.json'))).toBeUndefined();
  });
});
