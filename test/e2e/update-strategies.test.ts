/**
 * Update strategies (issue 9), through `berth apply` with real runc, overlay mounts, SQLite and a
 * real registry:
 * - start-first: the new container is healthy before the old one is stopped; a new container that
 *   fails never touches the old one; kill -9 of berth while the new one is starting converges to
 *   exactly one container;
 * - kill-then-download: the old container is gone before the new image is fetched.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { execFile } from 'node:child_process';
import { lstatSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { pushImage } from '../helpers/images.ts';
import { startRegistry, type RunningRegistry } from '../helpers/registry.ts';
import { busyboxImage, DEMO_REF, E2eRoot, imageDoc, requireE2e, until, volumeDoc } from '../helpers/e2e.ts';

const API = 'berth.dev/v1alpha1';
let e: E2eRoot;
let reg: RunningRegistry;

beforeAll(async () => {
  requireE2e();
  reg = await startRegistry();
  e = await E2eRoot.create('strategies');
  await e.importDemo();
}, 60_000);

afterAll(async () => {
  await e?.cleanup();
  await reg?.stop();
});

const apply = () => e.berth('apply', '-f', e.manifests);

/**
 * `web`, start-first: logs `start-V` when it starts, `ready-V` once it is ready (after `readyAfter`
 * seconds; its exec health check passes from then on) and `stop-V` when told to stop, into a shared
 * volume, in the order they happen.
 */
function web(version: string, opts: { readyAfter?: number; script?: string } = {}): object[] {
  const script =
    opts.script ??
    `echo start-${version} >> /data/events; trap 'echo stop-${version} >> /data/events; exit 0' TERM; ` +
      `sleep ${opts.readyAfter ?? 1}; echo ready-${version} >> /data/events; touch /tmp/ready; while true; do sleep 0.2; done`;
  return [
    volumeDoc('data'),
    {
      apiVersion: API,
      kind: 'Container',
      metadata: { name: 'web' },
      spec: {
        image: DEMO_REF,
        command: ['/bin/sh', '-c', script],
        env: { VERSION: version },
        network: 'none',
        mounts: [{ type: 'volume', name: 'data', target: '/data' }],
        stopGracePeriod: '3s',
        healthcheck: { exec: ['/bin/sh', '-c', 'test -f /tmp/ready'], interval: '300ms', timeout: '2s', retries: 3, startPeriod: '20s' },
        update: { strategy: 'start-first', confirmAfter: '1s' },
      },
    },
  ];
}

const events = () => readFileSync(join(e.root, 'volumes/data/events'), 'utf8').trim().split('\n');
const containerEntries = () => readdirSync(join(e.root, 'containers')).sort();
const runcIds = async () => {
  const { stdout } = await promisify(execFile)('runc', ['--root', join(e.root, 'runtime/runc'), 'list', '-q']);
  return stdout.trim().split('\n').filter(Boolean).sort();
};
const inspectEnv = async () => JSON.stringify(JSON.parse((await e.berth('inspect', 'web', '--json')).stdout));

describe('update strategy start-first', () => {
  it('v1 runs', async () => {
    await e.writeManifests({ 'web.yaml': web('v1') });
    const r = await apply();
    expect(r.code, r.stdout + r.stderr).toBe(0);
    await until('v1 ready', () => events().includes('ready-v1'));
  });

  it('a good update: the new container is healthy before the old one stops', async () => {
    await e.writeManifests({ 'web.yaml': web('v2', { readyAfter: 2 }) });
    const r = await apply();
    expect(r.code, r.stdout + r.stderr).toBe(0);
    await until('v1 stopped', () => events().includes('stop-v1'));
    const log = events();
    expect(log.indexOf('ready-v2'), log.join(' ')).toBeGreaterThan(log.indexOf('start-v2'));
    expect(log.indexOf('ready-v2'), log.join(' ')).toBeLessThan(log.indexOf('stop-v1'));
    expect(await inspectEnv()).toContain('"VERSION":"v2"');
    // The name now leads to the new instance; one task runs.
    expect(lstatSync(join(e.root, 'containers/web')).isSymbolicLink()).toBe(true);
    expect(await runcIds()).toHaveLength(1);
    expect((await e.berth('logs', 'web')).code).toBe(0);
  });

  it('a new container that exits at once: the old one is never stopped', async () => {
    const before = (await e.running('web'))!;
    await e.writeManifests({ 'web.yaml': web('v3', { script: 'echo start-v3 >> /data/events; exit 1' }) });
    const r = await apply();
    expect(r.code, r.stdout + r.stderr).toBe(1);
    expect(r.stdout).toMatch(/new container exited with code 1 before it was ready; the old one keeps running/);
    expect((await e.running('web'))!.pid).toBe(before.pid);
    expect(events()).not.toContain('stop-v2');
    expect(await inspectEnv()).toContain('"VERSION":"v2"');
    expect(await runcIds()).toHaveLength(1);
    expect(containerEntries().filter((n) => n.startsWith('web.'))).toHaveLength(1); // the link's target only
  });

  it('kill -9 of berth while the new container starts, then apply again: exactly one container', async () => {
    await e.writeManifests({ 'web.yaml': web('v4', { readyAfter: 4 }) });
    const killed = e.start('apply', '-f', e.manifests);
    await until('v4 started beside v2', () => events().includes('start-v4'), 30_000, 50);
    killed.child.kill('SIGKILL');
    await killed.done;
    expect(await runcIds()).toHaveLength(2); // both run: the successor outlives the killed berth

    const r = await apply();
    expect(r.code, r.stdout + r.stderr).toBe(0);
    expect(await runcIds()).toHaveLength(1);
    expect(await inspectEnv()).toContain('"VERSION":"v4"');
    expect(containerEntries().filter((n) => n.startsWith('web.'))).toHaveLength(1);
    // The interrupted successor was removed, and a new one started beside v2 again.
    expect(events().filter((l) => l === 'start-v4')).toHaveLength(2);
  }, 60_000);

  it('ports and start-first: refused with its place', async () => {
    const docs = web('v5') as Array<{ spec?: Record<string, unknown> }>;
    docs[1]!.spec!.ports = ['8080:80'];
    await e.writeManifests({ 'web.yaml': docs as object[] });
    const r = await e.berth('validate', '-f', e.manifests);
    expect(r.code).not.toBe(0);
    expect(r.stdout + r.stderr).toMatch(/web\.yaml:\d+:\d+.*start-first cannot publish ports/);
  });
});

describe('update strategy kill-then-download', () => {
  it('the old container is removed before the new image is fetched', async () => {
    await pushImage(reg.url, 'app', 'v1', await busyboxImage({ 'etc/version': 'v1\n' }));
    await pushImage(reg.url, 'app', 'v2', await busyboxImage({ 'etc/version': 'v2\n', big: 'x'.repeat(1 << 20) }));
    const docs = (tag: string) => [
      imageDoc('app', `${reg.host}/app:${tag}`),
      {
        apiVersion: API,
        kind: 'Container',
        metadata: { name: 'small' },
        spec: {
          image: 'app',
          command: ['/bin/sh', '-c', 'while true; do sleep 1; done'],
          network: 'none',
          stopGracePeriod: '1s',
          update: { strategy: 'kill-then-download', confirmAfter: '1s' },
        },
      },
    ];
    await e.writeManifests({ 'small.yaml': docs('v1') });
    expect((await apply()).code).toBe(0);

    await e.writeManifests({ 'small.yaml': docs('v2') });
    const plan = await e.berth('plan', '-f', e.manifests);
    expect(plan.stdout).toMatch(/small: stop and remove before the download \(update strategy kill-then-download\)/);
    const r = await apply();
    expect(r.code, r.stdout + r.stderr).toBe(0);
    const removed = r.stdout.search(/done +small: stop and remove before the download/);
    const pulled = r.stdout.search(/done +app: pull/);
    expect(removed, r.stdout).toBeGreaterThanOrEqual(0);
    expect(pulled, r.stdout).toBeGreaterThan(removed);
    expect((await e.berth('exec', 'small', '--', '/bin/cat', '/etc/version')).stdout).toBe('v2\n');
  }, 60_000);
});
