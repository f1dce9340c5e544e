/**
 * Updates that never leave the device worse (issue 9), through the real CLI with real runc, overlay
 * mounts, SQLite and a real registry. For each bad update the old container runs again, a file it
 * wrote into its own root filesystem before the update is still there, the generation is
 * RolledBack with the reason, and no later apply recreates anything until the manifests change.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { startRegistry, type RunningRegistry } from '../helpers/registry.ts';
import { DEMO_REF, E2eRoot, requireE2e, until } from '../helpers/e2e.ts';

const API = 'berth.dev/v1alpha1';
let e: E2eRoot;
let reg: RunningRegistry;

beforeAll(async () => {
  requireE2e();
  reg = await startRegistry();
  e = await E2eRoot.create('rollout');
  await e.importDemo();
}, 60_000);

afterAll(async () => {
  await e?.cleanup();
  await reg?.stop();
});

interface WebSpec {
  version: string;
  command?: string[];
  script?: string;
  user?: string;
  image?: string;
  confirmAfter?: string;
  healthcheck?: object;
}

/** `web`: writes a marker into its own rootfs once (the writable layer a rollback must keep), then idles. */
function web(s: WebSpec): object[] {
  const script = s.script ?? `[ -f /marker ] || echo "written by ${s.version}" > /marker; trap 'exit 0' TERM; while true; do sleep 1; done`;
  return [
    {
      apiVersion: API,
      kind: 'Container',
      metadata: { name: 'web' },
      spec: {
        image: s.image ?? DEMO_REF,
        command: s.command ?? ['/bin/sh', '-c', script],
        env: { VERSION: s.version },
        network: 'none',
        restartPolicy: 'Always',
        stopGracePeriod: '2s',
        ...(s.user ? { user: s.user } : {}),
        ...(s.healthcheck ? { healthcheck: s.healthcheck } : {}),
        update: { confirmAfter: s.confirmAfter ?? '1s' },
      },
    },
  ];
}

const marker = () => join(e.root, 'containers/web/rootfs/marker');

async function apply() {
  return e.berth('apply', '-f', e.manifests);
}

async function generations(): Promise<Array<{ generation: number; result: string; reason?: string; changed: string[] }>> {
  const r = await e.berth('rollout', 'history', '--json');
  expect(r.code, r.stderr).toBe(0);
  return JSON.parse(r.stdout);
}

async function webEnv(): Promise<string> {
  const r = await e.berth('inspect', 'web', '--json');
  expect(r.code, r.stderr).toBe(0);
  return JSON.stringify(JSON.parse(r.stdout));
}

/** Apply a bad update and check that the device is exactly as before. */
/** `thorough`: also check status, events and that the same manifests are not tried again (once is enough: it costs CLI runs). */
async function expectRollback(bad: WebSpec, reason: RegExp, opts: { oldKeepsRunning: boolean; thorough?: boolean }) {
  const before = (await e.running('web'))!;
  expect(before).toBeDefined();
  await e.writeManifests({ 'web.yaml': web(bad) });
  const r = await apply();
  expect(r.code, r.stdout + r.stderr).toBe(1);
  expect(r.stdout).toMatch(/ROLLED BACK generation \d+/);
  expect(r.stdout).toMatch(reason);
  const after = (await until('web running again', () => e.running('web')))!;
  if (opts.oldKeepsRunning) expect(after.pid).toBe(before.pid); // never stopped
  expect(readFileSync(marker(), 'utf8')).toBe('written by v1\n');
  expect(await webEnv()).toContain('"VERSION":"v1"');
  const [latest] = await generations();
  expect(latest!.result).toBe('RolledBack');
  expect(latest!.reason).toMatch(reason);
  if (!opts.thorough) return;
  const status = await e.status();
  expect(status.objects.find((o) => o.kind === 'Rollout')).toMatchObject({ state: 'Stalled', reason: 'RolledBack' });
  expect(status.events.some((ev) => ev.reason === 'RolledBack')).toBe(true);

  // The same bad manifests are not tried again: nothing is recreated.
  const again = await apply();
  expect(again.code).toBe(1);
  expect(again.stdout).not.toMatch(/^(done|FAILED) /m); // no step ran
  expect((await e.running('web'))!.pid).toBe(after.pid);
}

describe('rollouts through berth apply', () => {
  it('a first apply runs v1; the marker lands in its writable layer', async () => {
    await e.writeManifests({ 'web.yaml': web({ version: 'v1' }) });
    const r = await apply();
    expect(r.code, r.stdout + r.stderr).toBe(0);
    await until('the marker', () => existsSync(marker()));
    expect((await generations())[0]!.result).toBe('Confirmed');
  });

  it('berth plan foresees the refusal of a command missing from the image', async () => {
    await e.writeManifests({ 'web.yaml': web({ version: 'v2', command: ['/nope'] }) });
    const r = await e.berth('plan', '-f', e.manifests);
    expect(r.stdout, r.stderr).toMatch(/web: recreate blocked \(command "\/nope" not found in image localhost\/berth-demo\/busybox:latest/);
    expect(r.stdout).not.toMatch(/~ web: recreate/);
  });

  it('a command missing from the image: refused before the old container is stopped', async () => {
    await expectRollback({ version: 'v2', command: ['/nope'] }, /command "\/nope" not found/, { oldKeepsRunning: true, thorough: true });
  });

  it('a user the image does not have: refused before the old container is stopped', async () => {
    await expectRollback({ version: 'v2u', user: 'nosuchuser' }, /nosuchuser/, { oldKeepsRunning: true });
  });

  it('an image tag that cannot be pulled: the old container never stops', async () => {
    await expectRollback({ version: 'v2i', image: `${reg.host}/nothing:here` }, /not found|unknown/i, { oldKeepsRunning: true });
  });

  it('a process that exits 1 at once: the old container comes back with its writable layer', async () => {
    await expectRollback({ version: 'v3', command: ['/bin/sh', '-c', 'exit 1'] }, /exited with code 1/, { oldKeepsRunning: false, thorough: true });
  });

  it('a crash after 2 s, within confirmAfter: rolled back', async () => {
    await expectRollback({ version: 'v4', command: ['/bin/sh', '-c', 'sleep 2; exit 3'], confirmAfter: '6s' }, /exited with code 3/, {
      oldKeepsRunning: false,
    });
  });

  it('unhealthy past its retries: rolled back', async () => {
    const healthcheck = { exec: ['/bin/cat', '/no-such-file'], interval: '500ms', timeout: '2s', retries: 2 };
    await expectRollback({ version: 'v4h', healthcheck, confirmAfter: '20s' }, /web: unhealthy/, { oldKeepsRunning: false });
  });

  it('a good update is confirmed after confirmAfter; only then is the old container collected', async () => {
    const healthcheck = { exec: ['/bin/cat', '/marker'], interval: '500ms', timeout: '2s', retries: 2 };
    await e.writeManifests({ 'web.yaml': web({ version: 'v5', confirmAfter: '2s', healthcheck }) });
    const r = await apply();
    expect(r.code, r.stdout + r.stderr).toBe(0);
    expect(r.stdout).toMatch(/rollout: generation \d+ progressing: [\s\S]*rollout: generation \d+ confirmed/);
    expect(await webEnv()).toContain('"VERSION":"v5"');
    expect((await generations())[0]!.result).toBe('Confirmed');
    expect((await e.ps()).find((c) => c.name === 'web')).toMatchObject({ health: 'healthy' });
    const snaps = await e.berth('snapshots', 'ls', '--json');
    const keys = (JSON.parse(snaps.stdout).snapshots as Array<{ key: string }>).map((s) => s.key).filter((k) => k.startsWith('container/web/'));
    expect(keys).toHaveLength(1);
  });

  it('kill -9 of berth while confirming, then apply again: exactly one web, confirmed', async () => {
    await e.writeManifests({ 'web.yaml': web({ version: 'v6', confirmAfter: '3s' }) });
    const bg = e.start('apply', '-f', e.manifests);
    await bg.waitFor(/rollout: generation \d+ progressing/);
    bg.child.kill('SIGKILL');
    await bg.done;
    const r = await apply();
    expect(r.code, r.stdout + r.stderr).toBe(0);
    const ps = await e.ps();
    expect(ps.filter((c) => c.name === 'web').map((c) => c.state)).toEqual(['running']);
    expect(await webEnv()).toContain('"VERSION":"v6"');
    expect((await generations())[0]!.result).toBe('Confirmed');
  });

  it('rollout undo holds an older generation until retry', async () => {
    const gens = await generations();
    const v5 = gens.find((g) => g.result === 'Confirmed' && g.generation !== gens[0]!.generation)!;
    const undo = await e.berth('rollout', 'undo', '--to', String(v5.generation));
    expect(undo.code, undo.stderr).toBe(0);
    let r = await apply();
    expect(await webEnv()).toContain('"VERSION":"v5"');
    r = await apply();
    expect(r.stdout).toContain('no changes');
    const retry = await e.berth('rollout', 'retry');
    expect(retry.code, retry.stderr).toBe(0);
    r = await apply();
    expect(r.code, r.stdout + r.stderr).toBe(0);
    expect(await webEnv()).toContain('"VERSION":"v6"');
  });

  it('rollout retry tries a rolled-back desired state again', async () => {
    await e.writeManifests({ 'web.yaml': web({ version: 'v7', command: ['/bin/sh', '-c', 'exit 1'] }) });
    expect((await apply()).code).toBe(1);
    const retry = await e.berth('rollout', 'retry');
    expect(retry.stdout).toMatch(/will be applied again/);
    const r = await apply();
    expect(r.code).toBe(1);
    expect(r.stdout).toMatch(/^done +web: recreate/m);
    expect(r.stdout).toMatch(/ROLLED BACK/);
  });
});
