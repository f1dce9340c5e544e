/** `berth stats`: CPU, memory, pids and I/O from a running container's cgroup, through bin/berth, real runc. */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { execFile } from 'node:child_process';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { readCgroupStats } from '../../src/runtime/cgroup-stats.ts';
import type { Runtime } from '../../src/runtime/runtime.ts';
import { bindRootfs, cleanup, runtimeFixture, request, until } from './helpers.ts';

const BERTH = fileURLToPath(new URL('../../bin/berth', import.meta.url));
const exec = promisify(execFile);

describe('berth stats', () => {
  let root: string;
  let rt: Runtime;
  let rootfs: string;
  const berth = (...args: string[]) => exec(BERTH, ['--config', path.join(root, 'none.toml'), '--root', rt.root, ...args], { encoding: 'utf8' });

  beforeAll(async () => {
    ({ root, rootfs, rt } = await runtimeFixture('stats'));
    // Busy: it burns CPU, holds memory (a shell variable of 1 MiB) and runs two processes.
    await rt.create(
      request('busy', bindRootfs(rootfs), {
        args: [
          '/bin/sh',
          '-c',
          'a=$(head -c 1048576 /dev/zero | tr "\\000" x 2>/dev/null || yes | head -c 1048576); sleep 4343 & while true; do i=0; while [ $i -lt 3000 ]; do i=$((i+1)); done; sleep 0.05; done',
        ],
        resources: { memoryBytes: 64 << 20, pids: 32 },
      }),
    );
    await rt.start('busy');
    await rt.create(request('quiet', bindRootfs(rootfs), { args: ['/bin/sleep', '4444'] }));
    await rt.start('quiet');
    await rt.create(request('done', bindRootfs(rootfs), { args: ['/bin/true'] }));
    await rt.start('done');
    await until(async () => (await rt.status('done')).state === 'exited');
  });
  afterAll(async () => cleanup(rt, root));

  it('--json: one sample per running container, memory > 0, pids >= 1, CPU used, the limits set', async () => {
    const rows = JSON.parse((await berth('stats', '--json')).stdout);
    expect(rows.map((r: any) => r.name).sort()).toEqual(['busy', 'quiet']);
    const busy = rows.find((r: any) => r.name === 'busy');
    expect(busy.memoryBytes).toBeGreaterThan(0);
    expect(busy.memoryLimitBytes).toBe(64 << 20);
    expect(busy.pids).toBeGreaterThanOrEqual(2);
    expect(busy.pidsLimit).toBe(32);
    expect(busy.cpuSeconds).toBeGreaterThan(0);
    expect(busy.cpuPercent).toBeGreaterThan(0);
    const quiet = rows.find((r: any) => r.name === 'quiet');
    expect(quiet.memoryBytes).toBeGreaterThan(0);
    expect(quiet.pids).toBe(1);
    expect(typeof quiet.blockReadBytes).toBe('number');
  });

  it('names select containers; an unknown name is an error', async () => {
    const rows = JSON.parse((await berth('stats', '--json', 'quiet')).stdout);
    expect(rows.map((r: any) => r.name)).toEqual(['quiet']);
    const err = await berth('stats', '--json', 'nope').then(
      () => undefined,
      (e) => e,
    );
    expect(err.code).toBe(1);
    expect(err.stderr).toContain('container nope not found');
  });

  it('without a terminal, one table', async () => {
    const { stdout } = await berth('stats', 'quiet');
    const lines = stdout.trim().split('\n');
    expect(lines[0]).toMatch(/^NAME\s+CPU %\s+MEM USAGE \/ LIMIT\s+MEM %\s+PIDS\s+BLOCK I\/O$/);
    expect(lines[1]).toMatch(/^quiet\s+\d+\.\d\d%\s+[\d.]+ (Ki|Mi|Gi)?B \/ \S+/);
    expect(lines).toHaveLength(2);
  });

  it('reads the cgroup the runtime recorded', async () => {
    const s = await readCgroupStats((await rt.readRecord('quiet')).cgroupsPath);
    expect(s.pids).toBe(1);
    expect(s.memoryBytes).toBeGreaterThan(0);
  });
});
