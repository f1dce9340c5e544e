/**
 * http and tcp health probes from inside a network namespace (issue 12): a namespace this test
 * makes (as berth makes a container's, a bind-mounted `unshare --net`), with servers on its own
 * loopback that the host cannot reach. Probed from inside, they answer; the same probe from the
 * host does not (so the probe really runs in the namespace). A probe whose helper hangs is killed
 * at the check's timeout and leaves no process behind.
 */
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Healthcheck } from '../../src/runtime/health/healthcheck.ts';
import { probeOnce, type ProbeTarget } from '../../src/runtime/health/probe.ts';
import { until } from '../helpers/e2e.ts';

let dir: string;
let netns: string;
const servers: ChildProcess[] = [];
const HTTP_PORT = 18601; // in the test's own namespace: nothing else listens there
const SILENT_PORT = 18602;

const timing = { intervalMs: 1000, timeoutMs: 3000, retries: 1, startPeriodMs: 0 };
const http = (port: number, over: Partial<Healthcheck> = {}): Healthcheck => ({
  kind: 'http',
  http: { host: '127.0.0.1', port, path: '/healthz' },
  ...timing,
  ...over,
});
const tcp = (port: number): Healthcheck => ({ kind: 'tcp', tcp: { host: '127.0.0.1', port }, ...timing });
const inside = (): ProbeTarget => ({ name: 'c', network: 'none', netns, exec: () => Promise.reject(new Error('no exec here')) });
const fromHost: ProbeTarget = { name: 'c', network: 'host', exec: () => Promise.reject(new Error('no exec here')) };

/** Processes running the probe helper for the silent port (nsenter, then the Node it becomes): what a killed probe must not leave. */
async function probeHelpers(): Promise<number[]> {
  const pids: number[] = [];
  for (const pid of await readdir('/proc')) {
    if (!/^\d+$/.test(pid)) continue;
    const cmd = await readFile(`/proc/${pid}/cmdline`, 'utf8').catch(() => '');
    if (cmd.includes('netns-probe-main') && cmd.includes(`"port":${SILENT_PORT}`)) pids.push(Number(pid));
  }
  return pids;
}

beforeAll(async () => {
  if (process.getuid?.() !== 0) throw new Error('network namespaces need root');
  dir = await mkdtemp(join(tmpdir(), 'berth-netns-probe-'));
  netns = join(dir, 'netns');
  await writeFile(netns, '');
  // The namespace outlives `true` because unshare bind-mounts it on the file, as berth does.
  execFileSync('unshare', [`--net=${netns}`, 'ip', 'link', 'set', 'lo', 'up']);
  const serve = (code: string) => {
    const child = spawn('nsenter', [`--net=${netns}`, '--', process.execPath, '-e', code], { stdio: 'ignore' });
    servers.push(child);
  };
  serve(`require('node:http').createServer((q, s) => s.end(q.url === '/healthz' ? 'ok' : 'no')).listen(${HTTP_PORT}, '127.0.0.1')`);
  // Accepts connections and never answers: an app that hangs.
  serve(`require('node:net').createServer(() => {}).listen(${SILENT_PORT}, '127.0.0.1')`);
  await until('the servers in the namespace', () => {
    const out = execFileSync('nsenter', [`--net=${netns}`, 'ss', '-Hltn']).toString();
    return out.includes(`:${HTTP_PORT}`) && out.includes(`:${SILENT_PORT}`);
  });
});

afterAll(async () => {
  for (const s of servers) s.kill('SIGKILL');
  if (netns) execFileSync('umount', [netns]);
  if (dir) await rm(dir, { recursive: true, force: true });
});

describe('probes from inside a network namespace', () => {
  it('an http check answers from inside; from the host, the same address has nothing', async () => {
    const r = await probeOnce(http(HTTP_PORT), inside(), new AbortController().signal);
    expect(r).toMatchObject({ healthy: true, code: 200, timedOut: false });
    expect(r.output).toBe('HTTP 200\nok');
    const host = await probeOnce(http(HTTP_PORT), fromHost, new AbortController().signal);
    expect(host.healthy).toBe(false);
    expect(host.output).toMatch(/ECONNREFUSED/);
  });

  it('a tcp check connects from inside; a port nothing listens on is unhealthy, saying why', async () => {
    expect(await probeOnce(tcp(SILENT_PORT), inside(), new AbortController().signal)).toMatchObject({
      healthy: true,
      output: `connected to 127.0.0.1:${SILENT_PORT}`,
    });
    const closed = await probeOnce(tcp(18603), inside(), new AbortController().signal);
    expect(closed).toMatchObject({ healthy: false, timedOut: false });
    expect(closed.output).toMatch(/tcp 127\.0\.0\.1:18603: .*ECONNREFUSED/);
  });

  it('a bare network: none container (no namespace berth can enter) is still refused http and tcp checks', async () => {
    const r = await probeOnce(tcp(SILENT_PORT), { ...fromHost, network: 'none' }, new AbortController().signal);
    expect(r).toMatchObject({ healthy: false });
    expect(r.output).toMatch(/tcp health checks need network: host or networks/);
  });

  it('a probe that hangs is killed at its timeout and leaves no process behind', async () => {
    const check = http(SILENT_PORT, { timeoutMs: 2000 });
    // The helper itself hangs (stopped as soon as it is seen), so only the kill at the timeout can end the probe.
    const probing = probeOnce(check, inside(), new AbortController().signal);
    const [pid] = await until('the probe helper', async () => ((await probeHelpers()).length ? probeHelpers() : undefined), 10_000, 5);
    process.kill(pid!, 'SIGSTOP');
    const r = await probing;
    expect(r).toMatchObject({ healthy: false, timedOut: true, code: null, output: 'health check timed out after 2000 ms' });
    expect(await probeHelpers()).toEqual([]);
  });
});
