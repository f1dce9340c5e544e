import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import type { Runtime } from '../../src/runtime/runtime.ts';
import { readLogTail } from '../../src/runtime/logs.ts';
import { bindRootfs, cleanup, request, runtimeBinary, runtimeFixture, until } from './helpers.ts';

for (const which of ['runc', 'crun'] as const) {
  describe(`tasks with ${which}`, () => {
    let root: string;
    let rt: Runtime;
    let rootfs: string;
    const id = `${which}-${process.pid}`;

    beforeAll(async () => {
      ({ root, rootfs, rt } = await runtimeFixture(`basic-${which}`, { binary: (dir) => runtimeBinary(which, dir) }));
    });
    afterAll(async () => cleanup(rt, root));

    it('runs the image command and captures its output and exit code', async () => {
      const name = `out-${id}`;
      await rt.create(request(name, bindRootfs(rootfs), { args: ['/bin/sh', '-c', 'echo to-stdout; echo to-stderr >&2; exit 7'] }));
      const started = await rt.start(name);
      expect(started.state).toBe('running');
      expect(started.pid).toBeGreaterThan(0);
      const st = await until(async () => {
        const s = await rt.status(name);
        return s.state === 'exited' && s;
      });
      expect(st.exit!.exitCode).toBe(7);
      expect(st.exit!.signal).toBe(0);
      expect(st.exit!.oomKilled).toBe(false);
      const log = (await readLogTail(rt.containerDir(name))).toString();
      expect(log).toContain('to-stdout\n');
      expect(log).toContain('to-stderr\n');
    });

    it('merges image config and spec: env, workingDir, user names; network none has its own hostname', async () => {
      const name = `env-${id}`;
      await rt.create(
        request(name, bindRootfs(rootfs), {
          args: ['/bin/sh', '-c', 'echo "G=$GREETING P=$PATH H=$HOME"; pwd; id -u; id -g; hostname'],
          env: { GREETING: 'hello' },
          workingDir: '/tmp',
          user: 'app',
          network: 'none',
        }),
      );
      await rt.start(name);
      const st = await until(async () => {
        const s = await rt.status(name);
        return s.state === 'exited' && s;
      });
      expect(st.exit!.exitCode).toBe(0);
      const lines = (await readLogTail(rt.containerDir(name))).toString().trim().split('\n');
      expect(lines).toEqual(['G=hello P=/bin H=/home/app', '/tmp', '1000', '1000', name]);
    });

    it('a task over its memory limit is shown as OOM-killed', async () => {
      const name = `oom-${id}`;
      await rt.create(
        request(name, bindRootfs(rootfs), {
          args: ['/bin/sh', '-c', 'a=aaaaaaaaaaaaaaaa; while true; do a="$a$a"; done'],
          resources: { memoryBytes: 24 * 1024 * 1024 },
        }),
      );
      await rt.start(name);
      const st = await until(async () => {
        const s = await rt.status(name);
        return s.state === 'exited' && s;
      }, 20_000);
      expect(st.exit, JSON.stringify(st.exit)).toMatchObject({ oomKilled: true, signal: 9, exitCode: 137 });
    });

    it('seccomp refuses namespace creation (a user namespace needs no capability, only the filter stops it)', async () => {
      const name = `seccomp-${id}`;
      await rt.create(request(name, bindRootfs(rootfs), { args: ['/bin/sh', '-c', 'unshare -U /bin/echo escaped; echo after'] }));
      await rt.start(name);
      const st = await until(async () => {
        const s = await rt.status(name);
        return s.state === 'exited' && s;
      });
      expect(st.exit!.exitCode).toBe(0);
      const log = (await readLogTail(rt.containerDir(name))).toString();
      expect(log).not.toContain('escaped');
      expect(log).toContain('Operation not permitted');
      expect(log).toContain('after');
    });

    it('records how long the task ran, from a monotonic clock', async () => {
      const name = `ran-${id}`;
      await rt.create(request(name, bindRootfs(rootfs), { args: ['/bin/sleep', '0.3'] }));
      await rt.start(name);
      const st = await until(async () => {
        const s = await rt.status(name);
        return s.state === 'exited' && s;
      });
      expect(st.exit!.ranForMs).toBeGreaterThanOrEqual(280);
      expect(st.exit!.ranForMs).toBeLessThan(3000);
      expect(st.finishedAtMs! - st.startedAtMs!).toBeGreaterThanOrEqual(250);
    });

    it('a task killed by a signal reports 128+signal', async () => {
      const name = `sig-${id}`;
      await rt.create(request(name, bindRootfs(rootfs), { args: ['/bin/sleep', '60'] }));
      await rt.start(name);
      await rt.kill(name, 'SIGKILL');
      const st = await until(async () => {
        const s = await rt.status(name);
        return s.state === 'exited' && s;
      });
      expect(st.exit, JSON.stringify(st.exit)).toMatchObject({ signal: 9, exitCode: 137 });
    });

    it('start is idempotent while running (no duplicate task); stop sends the stop signal and waits for the exit', async () => {
      const name = `idem-${id}`;
      await rt.create(
        request(name, bindRootfs(rootfs), {
          args: ['/bin/sh', '-c', 'trap "echo got-term; exit 0" TERM; echo ready; while true; do sleep 0.05; done'],
        }),
      );
      const a = await rt.start(name);
      const b = await rt.start(name);
      expect(b.pid).toBe(a.pid);
      // The supervisor stays small (the budget: under 2 MiB per container).
      const rssKiB = Number(/^VmRSS:\s+(\d+) kB/m.exec(await readFile(`/proc/${a.record.task!.shimPid}/status`, 'utf8'))![1]);
      expect(rssKiB).toBeLessThan(2048);
      await until(async () => (await readLogTail(rt.containerDir(name))).toString().includes('ready'));
      const t0 = Date.now();
      const st = await rt.stop(name, { gracePeriodMs: 5000 });
      expect(Date.now() - t0).toBeLessThan(2000); // the trap exits at once: no waiting out the grace period
      expect(st.state).toBe('stopped');
      expect(st.exit!.exitCode).toBe(0);
      expect((await readLogTail(rt.containerDir(name))).toString()).toContain('got-term');
      expect((await rt.status(name)).state).toBe('stopped');
      const cfg = JSON.parse(await readFile(path.join(rt.containerDir(name), 'config.json'), 'utf8'));
      expect(cfg.process.noNewPrivileges).toBe(true);
    });

    it('stop sends SIGKILL after the grace period to a task that ignores SIGTERM', async () => {
      const name = `kill-${id}`;
      await rt.create(request(name, bindRootfs(rootfs), { args: ['/bin/sh', '-c', 'trap "" TERM; echo ready; while true; do sleep 0.05; done'] }));
      await rt.start(name);
      await until(async () => (await readLogTail(rt.containerDir(name))).toString().includes('ready'));
      const t0 = Date.now();
      const st = await rt.stop(name, { gracePeriodMs: 700 });
      const took = Date.now() - t0;
      expect(took).toBeGreaterThanOrEqual(700);
      expect(took).toBeLessThan(3000);
      expect(st.exit!.signal).toBe(9);
      expect(st.exit!.exitCode).toBe(137);
    });
  });
}
