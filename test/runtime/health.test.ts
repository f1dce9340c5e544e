/** Health checks against real containers (runc, busybox): exec, http and tcp probes, the monitor, health.json. */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mkdir, symlink, writeFile } from 'node:fs/promises';
import { createServer } from 'node:net';
import path from 'node:path';
import { silentLogger } from '../../src/log.ts';
import { readHealthFile, writeHealthFile } from '../../src/runtime/health/health-file.ts';
import type { HealthState } from '../../src/runtime/health/health-state.ts';
import type { Healthcheck } from '../../src/runtime/health/healthcheck.ts';
import { HealthMonitor, type HealthRuntime } from '../../src/runtime/health/monitor.ts';
import { probeOnce, type ProbeTarget } from '../../src/runtime/health/probe.ts';
import type { Runtime } from '../../src/runtime/runtime.ts';
import { bindRootfs, cleanup, processesWith, request, runtimeFixture, until } from './helpers.ts';

/** A loopback port nothing listens on right now. */
async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const port = (server.address() as { port: number }).port;
  await new Promise((r) => server.close(r));
  return port;
}

const timing = { intervalMs: 50, timeoutMs: 2000, retries: 2, startPeriodMs: 0 };
const exec = (args: string[], o: Partial<Healthcheck> = {}): Healthcheck => ({ kind: 'exec', exec: args, ...timing, ...o });

describe('health checks (real runc)', () => {
  let root: string;
  let rootfs: string;
  let rt: Runtime;
  let port: number;
  const monitors: HealthMonitor[] = [];
  const target = (name: string, network: 'host' | 'none' = 'host'): ProbeTarget => ({ name, network, exec: (args, o) => rt.exec(name, { args, ...o }) });
  const taskStart = async (name: string) => (await rt.status(name)).startedAtMs!;

  beforeAll(async () => {
    ({ root, rootfs, rt } = await runtimeFixture('health'));
    for (const applet of ['rm', 'httpd']) await symlink('busybox', path.join(rootfs, 'bin', applet));
    await mkdir(path.join(rootfs, 'www'));
    await writeFile(path.join(rootfs, 'www/healthz'), 'fine\n');
    port = await freePort();
    await rt.create(request('app', bindRootfs(rootfs), { args: ['/bin/sh', '-c', 'touch /tmp/ready; while true; do sleep 1; done'] }));
    await rt.start('app');
    await rt.create(request('web', bindRootfs(rootfs), { args: ['/bin/httpd', '-f', '-p', `127.0.0.1:${port}`, '-h', '/www'] }));
    await rt.start('web');
    await until(
      () => probeOnce({ kind: 'tcp', tcp: { port, host: '127.0.0.1' }, ...timing }, target('web'), AbortSignal.timeout(5000)).then((r) => r.healthy),
      10_000,
      'httpd listening',
    );
  });
  afterAll(async () => {
    for (const m of monitors) await m.close();
    await cleanup(rt, root);
  });

  const monitor = (o: { runtime?: HealthRuntime; record?: (root: string, name: string, s: HealthState) => Promise<boolean> } = {}) => {
    const changes: { name: string; status: string }[] = [];
    const m = new HealthMonitor({
      runtime: o.runtime ?? rt,
      log: silentLogger(),
      onChange: (name, s) => changes.push({ name, status: s.status }),
      record: o.record,
    });
    monitors.push(m);
    return { m, changes };
  };

  it('an exec probe runs inside the container: exit 0 healthy, else unhealthy with its output', async () => {
    expect(await probeOnce(exec(['cat', '/tmp/ready']), target('app'), AbortSignal.timeout(10_000))).toMatchObject({ healthy: true, code: 0 });
    const bad = await probeOnce(exec(['cat', '/tmp/missing']), target('app'), AbortSignal.timeout(10_000));
    expect(bad).toMatchObject({ healthy: false, code: 1, timedOut: false });
    expect(bad.output).toContain('/tmp/missing');
  });

  it('a hanging exec probe is killed at its timeout and leaves no process behind', async () => {
    const r = await probeOnce(exec(['sleep', '987011'], { timeoutMs: 300 }), target('app'), AbortSignal.timeout(10_000));
    expect(r).toMatchObject({ healthy: false, timedOut: true, code: null });
    expect(r.output).toContain('timed out after 300 ms');
    expect(await processesWith('987011')).toEqual([]);
  });

  it('the monitor: starting → healthy → unhealthy after retries when the checked file is removed inside the container', async () => {
    await rt.exec('app', { args: ['touch', '/tmp/ready'] });
    const { m, changes } = monitor();
    m.watch('app', exec(['cat', '/tmp/ready']), await taskStart('app'));
    expect(m.get('app')?.status).toBe('starting');
    await until(async () => m.get('app')?.status === 'healthy', 10_000, 'healthy');
    await rt.exec('app', { args: ['rm', '/tmp/ready'] });
    await until(async () => m.get('app')?.status === 'unhealthy', 10_000, 'unhealthy');
    expect(m.get('app')).toMatchObject({ failingStreak: 2, code: 1 });
    expect(m.get('app')!.output).toContain('/tmp/ready');
    expect(changes.filter((c) => c.name === 'app').map((c) => c.status)).toEqual(['starting', 'healthy', 'unhealthy']);
    await until(async () => (await readHealthFile(rt.root, 'app'))?.status === 'unhealthy', 5000, 'health.json');
    await m.close();
    await rt.exec('app', { args: ['touch', '/tmp/ready'] });
  });

  it('failures within the start period do not count', async () => {
    let probes = 0;
    const counting: HealthRuntime = { root: rt.root, readRecord: (n) => rt.readRecord(n), exec: (n, o) => (probes++, rt.exec(n, o)) };
    const { m } = monitor({ runtime: counting });
    m.watch('app', exec(['cat', '/tmp/never'], { retries: 1, startPeriodMs: 3_600_000 }), await taskStart('app'));
    await until(async () => probes >= 6, 20_000, 'six probes');
    await until(async () => m.get('app')!.output.includes('/tmp/never'), 5000, 'a recorded failure');
    expect(m.get('app')).toMatchObject({ status: 'starting', failingStreak: 0 });
    await m.close();
  });

  it('a new task starts over: starting again, with a new start period', async () => {
    const { m } = monitor();
    const check = exec(['cat', '/tmp/ready']);
    m.watch('app', check, await taskStart('app'));
    await until(async () => m.get('app')?.status === 'healthy', 10_000, 'healthy');
    m.watch('app', check, await taskStart('app')); // the same task again: nothing changes
    expect(m.get('app')?.status).toBe('healthy');
    m.watch('app', check, (await taskStart('app')) + 1);
    expect(m.get('app')).toMatchObject({ status: 'starting', failingStreak: 0 });
    await m.close();
  });

  it('writes health.json only when something visible changes, never on every probe', async () => {
    let probes = 0;
    const writes: string[] = [];
    const counting: HealthRuntime = { root: rt.root, readRecord: (n) => rt.readRecord(n), exec: (n, o) => (probes++, rt.exec(n, o)) };
    const record = async (r: string, n: string, s: HealthState) => (writes.push(`${s.status}/${s.failingStreak}`), writeHealthFile(r, n, s));
    const { m } = monitor({ runtime: counting, record });
    m.watch('app', exec(['cat', '/tmp/ready'], { retries: 2 }), await taskStart('app'));
    await until(async () => probes >= 8, 20_000, 'eight probes');
    expect(writes).toEqual(['starting/0', 'healthy/0']);
    await rt.exec('app', { args: ['rm', '/tmp/ready'] });
    await until(async () => m.get('app')?.status === 'unhealthy', 10_000, 'unhealthy');
    const atUnhealthy = probes;
    await until(async () => probes >= atUnhealthy + 6, 20_000, 'six more probes');
    expect(writes).toEqual(['starting/0', 'healthy/0', 'healthy/1', 'unhealthy/2']);
    await m.close();
    await rt.exec('app', { args: ['touch', '/tmp/ready'] });
  });

  it('an http probe (busybox httpd in a host-network container): 2xx healthy, 404 unhealthy with the status', async () => {
    const http = (p: string): Healthcheck => ({ kind: 'http', http: { port, path: p, host: '127.0.0.1' }, ...timing });
    const ok = await probeOnce(http('/healthz'), target('web'), AbortSignal.timeout(10_000));
    expect(ok).toMatchObject({ healthy: true, code: 200 });
    expect(ok.output).toBe('HTTP 200\nfine\n');
    expect(await probeOnce(http('/missing'), target('web'), AbortSignal.timeout(10_000))).toMatchObject({ healthy: false, code: 404 });
    const { m } = monitor();
    m.watch('web', http('/healthz'), await taskStart('web'));
    await until(async () => m.get('web')?.status === 'healthy', 10_000, 'web healthy');
    await m.close();
  });

  it('a tcp probe: a listening port is healthy, a closed one is not (the error says why)', async () => {
    const tcp = (p: number): Healthcheck => ({ kind: 'tcp', tcp: { port: p, host: '127.0.0.1' }, ...timing });
    expect(await probeOnce(tcp(port), target('web'), AbortSignal.timeout(10_000))).toMatchObject({ healthy: true });
    const closed = await probeOnce(tcp(await freePort()), target('web'), AbortSignal.timeout(10_000));
    expect(closed.healthy).toBe(false);
    expect(closed.output).toContain('ECONNREFUSED');
  });

  it('http and tcp probes of a network: none container fail, saying why', async () => {
    const r = await probeOnce({ kind: 'tcp', tcp: { port, host: '127.0.0.1' }, ...timing }, target('web', 'none'), AbortSignal.timeout(10_000));
    expect(r.healthy).toBe(false);
    expect(r.output).toContain('network: host');
  });
});
