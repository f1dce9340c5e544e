/** `berth exec` and the health columns of `berth ps` / `berth inspect`, through bin/berth (real runc). */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { execFile, spawn } from 'node:child_process';
import { writeFile } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { silentLogger } from '../../src/log.ts';
import { HealthMonitor } from '../../src/runtime/health/monitor.ts';
import type { Runtime } from '../../src/runtime/runtime.ts';
import { bindRootfs, cleanup, request, runtimeFixture, until } from './helpers.ts';

const BERTH = fileURLToPath(new URL('../../bin/berth', import.meta.url));
const run = promisify(execFile);

describe('berth exec, and health in ps / inspect', () => {
  let root: string;
  let rootfs: string;
  let rt: Runtime;
  const globals = () => ['--config', path.join(root, 'none.toml'), '--root', rt.root];
  const berth = (...args: string[]) => run(BERTH, [...globals(), ...args], { encoding: 'utf8' });
  /** Run berth with `input` on its stdin; resolves with its exit code and output (never rejects on a non-zero exit). */
  const berthWithInput = (input: string, ...args: string[]) =>
    new Promise<{ code: number | null; stdout: string; stderr: string }>((resolve, reject) => {
      const child = spawn(BERTH, [...globals(), ...args], { stdio: ['pipe', 'pipe', 'pipe'] });
      let stdout = '';
      let stderr = '';
      child.stdout.on('data', (b) => (stdout += b));
      child.stderr.on('data', (b) => (stderr += b));
      child.on('error', reject);
      child.on('close', (code) => resolve({ code, stdout, stderr }));
      child.stdin.end(input);
    });

  beforeAll(async () => {
    ({ root, rootfs, rt } = await runtimeFixture('exec-cli'));
    await writeFile(path.join(rootfs, 'etc/only-in-image'), 'from the container\n');
    await rt.create(request('box', bindRootfs(rootfs), { args: ['/bin/sh', '-c', 'touch /tmp/ready; while true; do sleep 1; done'] }));
    await rt.start('box');
  });
  afterAll(async () => cleanup(rt, root));

  it('runs the command in the container, streams stdout and stderr, and exits with its code', async () => {
    const r = await berthWithInput('', 'exec', 'box', '--', '/bin/sh', '-c', 'cat /etc/only-in-image; echo to-stderr >&2; exit 3');
    expect(r).toMatchObject({ code: 3, stdout: 'from the container\n', stderr: 'to-stderr\n' });
    expect((await berthWithInput('', 'exec', 'box', '--', 'true')).code).toBe(0);
  });

  it('passes stdin through, and sets -e variables and the -w directory', async () => {
    expect(await berthWithInput('typed in\n', 'exec', 'box', '--', 'cat')).toMatchObject({ code: 0, stdout: 'typed in\n' });
    const r = await berthWithInput('', 'exec', '-e', 'GREETING=hi', '-w', '/etc', 'box', '--', '/bin/sh', '-c', 'echo "$GREETING $(pwd)"');
    expect(r).toMatchObject({ code: 0, stdout: 'hi /etc\n' });
  });

  it('-t gives the command a terminal (under script(1), which gives berth one); the exit code still passes through', async () => {
    const quote = (a: string) => `'${a.replace(/'/g, `'\\''`)}'`;
    const line = [BERTH, ...globals(), 'exec', '-it', 'box', '--', '/bin/sh', '-c', 'tty; exit 5'].map(quote).join(' ');
    const r = await new Promise<{ code: number | null; out: string }>((resolve, reject) => {
      const child = spawn('script', ['-qec', line, '/dev/null'], { stdio: ['ignore', 'pipe', 'inherit'] });
      let out = '';
      child.stdout.on('data', (b) => (out += b));
      child.on('error', reject);
      child.on('close', (code) => resolve({ code, out }));
    });
    expect(r.code).toBe(5);
    expect(r.out).toMatch(/\/dev\/pts\/\d+/);
    expect((await berthWithInput('', 'exec', 'box', '--', '/bin/sh', '-c', 'tty')).stdout).toBe('not a tty\n');
  });

  it('names a missing container', async () => {
    const r = await berthWithInput('', 'exec', 'nosuch', '--', 'true');
    expect(r.code).toBe(1);
    expect(r.stderr).toContain('container nosuch not found');
  });

  it('ps and inspect show the health the monitor recorded for the running task', async () => {
    expect(JSON.parse((await berth('ps', '--json')).stdout)[0].health).toBeNull();
    const m = new HealthMonitor({ runtime: rt, log: silentLogger() });
    try {
      const check = { kind: 'exec' as const, exec: ['cat', '/tmp/ready'], intervalMs: 50, timeoutMs: 2000, retries: 1, startPeriodMs: 0 };
      m.watch('box', check, (await rt.status('box')).startedAtMs!);
      await until(async () => m.get('box')?.status === 'healthy', 10_000, 'healthy');
      await until(async () => /^box\s+\S+\s+running\s+healthy\s+\d+/m.test((await berth('ps')).stdout), 10_000, 'ps HEALTH column');
      await rt.exec('box', { args: ['/bin/sh', '-c', 'mv /tmp/ready /tmp/gone'] });
      await until(async () => m.get('box')?.status === 'unhealthy', 10_000, 'unhealthy');
      await until(async () => JSON.parse((await berth('ps', '--json')).stdout)[0].health === 'unhealthy', 10_000, 'ps --json health');
      const v = JSON.parse((await berth('inspect', 'box', '--json')).stdout);
      expect(v.health).toMatchObject({ status: 'unhealthy', check: 'exec cat /tmp/ready', failingStreak: 1, retries: 1, lastCode: 1 });
      expect(v.health.lastOutput).toContain('/tmp/ready');
      expect((await berth('inspect', 'box')).stdout).toMatch(/health:\n\s+status: unhealthy/);
    } finally {
      await m.close();
    }
  });
});
