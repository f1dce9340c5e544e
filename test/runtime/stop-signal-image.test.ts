/** The image's StopSignal (Dockerfile STOPSIGNAL) stops the task when the manifest names none (issue 11). Real runc. */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readLogTail } from '../../src/runtime/logs.ts';
import type { Runtime } from '../../src/runtime/runtime.ts';
import { bindRootfs, cleanup, request, runtimeFixture, until } from './helpers.ts';

describe('image StopSignal', () => {
  let root: string;
  let rt: Runtime;
  let rootfs: string;
  // Says which signal arrived, and exits 0 on either.
  const args = ['/bin/sh', '-c', 'trap "echo got-usr1; exit 0" USR1; trap "echo got-term; exit 0" TERM; echo ready; while true; do sleep 0.05; done'];
  const withImageSignal = (name: string, spec: object) => {
    const req = request(name, bindRootfs(rootfs), { args, stopGracePeriodMs: 20_000, ...spec });
    return { ...req, imageConfig: { config: { Env: ['PATH=/bin'], StopSignal: 'USR1' } } };
  };
  const stopAndRead = async (name: string) => {
    await rt.start(name);
    await until(async () => (await readLogTail(rt.containerDir(name))).toString().includes('ready'));
    const st = await rt.stop(name);
    return { exit: st.exit, log: (await readLogTail(rt.containerDir(name))).toString() };
  };

  beforeAll(async () => {
    ({ root, rootfs, rt } = await runtimeFixture('stop-signal'));
  });
  afterAll(async () => cleanup(rt, root));

  it('is used when the manifest names no stopSignal (STOPSIGNAL USR1 → SIGUSR1)', async () => {
    await rt.create(withImageSignal('img-signal', { stopSignalDefaulted: true }));
    expect((await rt.readRecord('img-signal')).stopSignal).toBe('SIGUSR1');
    const { exit, log } = await stopAndRead('img-signal');
    expect(log).toContain('got-usr1');
    expect(exit).toMatchObject({ exitCode: 0, signal: 0 });
  });

  it("the manifest's stopSignal wins over the image's", async () => {
    await rt.create(withImageSignal('own-signal', { stopSignal: 'SIGTERM' }));
    expect((await rt.readRecord('own-signal')).stopSignal).toBe('SIGTERM');
    const { log } = await stopAndRead('own-signal');
    expect(log).toContain('got-term');
    expect(log).not.toContain('got-usr1');
  });
});
