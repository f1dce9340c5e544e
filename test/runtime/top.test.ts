/** `berth top`: the processes in a running container's cgroup, through bin/berth, real runc. */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { execFile } from 'node:child_process';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import type { Runtime } from '../../src/runtime/runtime.ts';
import { bindRootfs, cleanup, runtimeFixture, request } from './helpers.ts';

const BERTH = fileURLToPath(new URL('../../bin/berth', import.meta.url));
const exec = promisify(execFile);

describe('berth top', () => {
  let root: string;
  let rt: Runtime;
  let rootfs: string;
  const berth = (...args: string[]) => exec(BERTH, ['--config', path.join(root, 'none.toml'), '--root', rt.root, ...args], { encoding: 'utf8' });

  beforeAll(async () => {
    ({ root, rootfs, rt } = await runtimeFixture('top'));
  });
  afterAll(async () => cleanup(rt, root));

  it("lists the container's processes: its shell and the sleep it runs, with their host pids", async () => {
    await rt.create(request('sleeper', bindRootfs(rootfs), { args: ['/bin/sh', '-c', 'sleep 4242 & wait'] }));
    const st = await rt.start('sleeper');
    const { stdout } = await berth('top', 'sleeper');
    const lines = stdout.trim().split('\n');
    expect(lines[0]).toMatch(/^UID\s+PID\s+PPID\s+C\s+STIME\s+TTY\s+TIME\s+CMD$/);
    const sleep = lines.find((l) => l.endsWith('sleep 4242'));
    expect(sleep).toMatch(new RegExp(`^0\\s+\\d+\\s+${st.pid}\\s+\\d+\\s+\\S+\\s+\\?\\s+\\d\\d:\\d\\d:\\d\\d\\s+sleep 4242$`));
    expect(lines.some((l) => new RegExp(`^0\\s+${st.pid}\\s`).test(l))).toBe(true);

    const rows = JSON.parse((await berth('top', '--json', 'sleeper')).stdout);
    expect(rows.map((r: any) => r.command)).toEqual(['/bin/sh -c sleep 4242 & wait', 'sleep 4242']);
    expect(rows[0]).toMatchObject({ pid: st.pid, uid: 0, tty: null });
    expect(rows[1].ppid).toBe(st.pid);
  });

  it('a container that is not running is an error', async () => {
    await rt.create(request('idle', bindRootfs(rootfs), { args: ['/bin/true'] }));
    const err = await berth('top', 'idle').then(
      () => undefined,
      (e) => e,
    );
    expect(err.code).toBe(1);
    expect(err.stderr).toContain('container idle is not running');
  });
});
