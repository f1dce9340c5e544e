import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { isKind } from '../../src/errors.ts';
import type { Runtime } from '../../src/runtime/runtime.ts';
import { bindRootfs, cleanup, processesWith, request, runtimeBinary, runtimeFixture } from './helpers.ts';

describe.each(['runc', 'crun'] as const)('Runtime.exec (real %s)', (binary) => {
  let root: string;
  let rootfs: string;
  let rt: Runtime;

  beforeAll(async () => {
    ({ root, rootfs, rt } = await runtimeFixture(`exec-${binary}`, { binary: (dir) => runtimeBinary(binary, dir) }));
    await writeFile(path.join(rootfs, 'etc/only-in-image'), 'inside the container rootfs\n');
    await rt.create(request('box', bindRootfs(rootfs), { args: ['/bin/sh', '-c', 'while true; do sleep 1; done'], env: { FROM_SPEC: 'spec-env' } }));
    await rt.start('box');
  });
  afterAll(async () => cleanup(rt, root));

  it('runs in the container: its rootfs, its environment, stdout and stderr captured', async () => {
    const r = await rt.exec('box', { args: ['/bin/sh', '-c', 'cat /etc/only-in-image; echo "env=$FROM_SPEC" >&2'] });
    expect(r).toMatchObject({ exitCode: 0, timedOut: false });
    expect(r.output).toContain('inside the container rootfs\n');
    expect(r.output).toContain('env=spec-env\n');
  });

  it('passes the exit code through, and 128+signal for a killed process', async () => {
    expect((await rt.exec('box', { args: ['/bin/sh', '-c', 'exit 7'] })).exitCode).toBe(7);
    expect((await rt.exec('box', { args: ['/bin/sh', '-c', 'kill -9 $$'] })).exitCode).toBe(137);
  });

  it('keeps only the last bytes of a large output', async () => {
    const r = await rt.exec('box', { args: ['/bin/sh', '-c', 'seq 1 100000'], outputLimitBytes: 4096 });
    expect(r.outputTruncated).toBe(true);
    expect(Buffer.byteLength(r.output)).toBe(4096);
    expect(r.output.endsWith('99999\n100000\n')).toBe(true);
  });

  it('kills a hanging process at its timeout and leaves no process behind (children included)', async () => {
    const r = await rt.exec('box', { args: ['/bin/sh', '-c', 'sleep 987001 & sleep 987002'], timeoutMs: 500 });
    expect(r).toMatchObject({ timedOut: true, exitCode: null });
    expect(await processesWith('987001')).toEqual([]);
    expect(await processesWith('987002')).toEqual([]);
    // Only the container's own init tree is left in its cgroup.
    const cg = (await rt.readRecord('box')).cgroupsPath;
    const procs = (await readFile(path.join('/sys/fs/cgroup/pids', cg, 'cgroup.procs'), 'utf8')).trim().split('\n');
    const cmdlines = await Promise.all(procs.map((p) => readFile(`/proc/${p}/cmdline`, 'utf8').catch(() => '')));
    expect(cmdlines.filter((c) => c.includes('98700'))).toEqual([]);
  });

  it('an abort kills the process too, and rejects with the reason', async () => {
    const ac = new AbortController();
    const running = rt.exec('box', { args: ['/bin/sh', '-c', 'sleep 987003'], signal: ac.signal });
    // Abort only once the process exists, so the test covers killing a started process.
    for (let i = 0; i < 500 && (await processesWith('987003')).length === 0; i++) await new Promise((r) => setTimeout(r, 10));
    expect((await processesWith('987003')).length).toBe(1);
    ac.abort(new Error('stop it'));
    await expect(running).rejects.toThrow('stop it');
    expect(await processesWith('987003')).toEqual([]);
  });

  it('refuses a container that is not running, by kind', async () => {
    await rt.create(request('idle', bindRootfs(rootfs), { args: ['/bin/true'] }));
    const err = await rt.exec('idle', { args: ['true'] }).catch((e) => e);
    expect(isKind(err, 'FailedPrecondition')).toBe(true);
    expect(err.message).toContain('not running');
  });
});
