/**
 * Update locks and windows through `berth apply` (issue 9), with real runc and a real registry:
 * an app holding its update lock keeps running through a change until it lets go; outside the
 * update window a change is staged (its image pulled) and nothing restarts; `--force` overrides both.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readFile } from 'node:fs/promises';
import { pushImage } from '../helpers/images.ts';
import { startRegistry, type RunningRegistry } from '../helpers/registry.ts';
import { busyboxImage, containerDoc, E2eRoot, imageDoc, requireE2e, until } from '../helpers/e2e.ts';
import { buildFlockHold } from '../runtime/fixtures/flock-hold.ts';

let reg: RunningRegistry;
let e: E2eRoot;

beforeAll(async () => {
  requireE2e();
  reg = await startRegistry();
  e = await E2eRoot.create('update-gate');
  const flockHold = await readFile(buildFlockHold(e.dir));
  for (const tag of ['v1', 'v2', 'v3']) {
    await pushImage(reg.url, 'locker', tag, await busyboxImage({ 'bin/flock-hold': { content: flockHold, mode: 0o755 }, 'etc/version': `${tag}\n` }));
  }
}, 120_000);

afterAll(async () => {
  await e?.cleanup();
  await reg?.stop();
});

/** `app` takes its update lock in the background (its pid in /tmp/lockpid) when `lock`, then idles. */
const docs = (tag: string, env: string, lock: boolean) => [
  imageDoc('locker', `${reg.host}/locker:${tag}`),
  containerDoc('app', { image: 'locker', env: { V: env }, script: lock ? '/bin/flock-hold /run/berth/lock & echo $! > /tmp/lockpid' : 'true' }),
];

/** A window of one minute starting in about two hours: closed now (the machine's local time). */
function closedWindow(): string {
  const at = new Date(Date.now() + 2 * 3600_000);
  const hm = (d: Date) => `${String(d.getHours()).padStart(2, '0')}:${String(d.getMinutes()).padStart(2, '0')}`;
  return `${hm(at)}-${hm(new Date(at.getTime() + 60_000))}`;
}

describe('update locks and windows', () => {
  it('an app holding its update lock is not stopped; the change applies once it lets go', async () => {
    await e.writeManifests({ 'app.yaml': docs('v1', 'a', true) });
    expect((await e.berth('apply', '-f', e.manifests)).code).toBe(0);
    const before = (await until('app running', () => e.running('app')))!;
    await until('the app holds its lock', async () => (await e.berth('exec', 'app', '--', '/bin/cat', '/tmp/lockpid')).stdout.trim() !== '' || undefined);

    await e.writeManifests({ 'app.yaml': docs('v1', 'b', true) });
    const held = await e.berth('apply', '-f', e.manifests);
    expect(held.code).toBe(1);
    expect(held.stdout).toContain('app: Waiting (update lock held by the app) (then recreate (env V changed))');
    expect((await e.running('app'))!.pid).toBe(before.pid);
    const status = await e.status();
    expect(status.objects.find((o) => o.kind === 'Container' && o.name === 'app')!.message).toContain('Waiting (update lock held by the app)');

    const release = await e.berth('exec', 'app', '--', '/bin/sh', '-c', 'kill $(cat /tmp/lockpid)');
    expect(release.code, release.stderr).toBe(0);
    const applied = await e.berth('apply', '-f', e.manifests);
    expect(applied.code, applied.stdout + applied.stderr).toBe(0);
    expect(applied.stdout).toMatch(/done +app: recreate \(env V changed\)/);
  });

  it('outside the update window a change is staged (pulled) and nothing restarts; --force applies it', async () => {
    await e.writeConfig(`[updates]\nwindows = ["${closedWindow()}"]`);
    const before = (await e.running('app'))!;
    await e.writeManifests({ 'app.yaml': docs('v2', 'b', false) });
    const staged = await e.berth('apply', '-f', e.manifests);
    expect(staged.code).toBe(1);
    expect(staged.stdout).toMatch(/done +locker: pull/);
    expect(staged.stdout).toMatch(/app: Staged, waiting for the update window \(opens in (1h5\dm|2h)\)/);
    expect((await e.running('app'))!.pid).toBe(before.pid);

    const forced = await e.berth('apply', '--force', '-f', e.manifests);
    expect(forced.code, forced.stdout + forced.stderr).toBe(0);
    expect(forced.stdout).toMatch(/done +app: recreate/);
    await e.writeConfig('');
  });

  it('under berth run, the staged change goes ahead within seconds of the release, not at the next resync', async () => {
    await e.writeConfig('[reconcile]\nresync_interval = "10m"');
    await e.writeManifests({ 'app.yaml': docs('v3', 'c', true) });
    expect((await e.berth('apply', '-f', e.manifests)).code).toBe(0);
    await until('the app holds its lock', async () => (await e.berth('exec', 'app', '--', '/bin/cat', '/tmp/lockpid')).stdout.trim() !== '' || undefined);
    const daemon = e.start('run', '-f', e.manifests);
    try {
      await daemon.waitFor(/converged|generation/, 30_000);
      await e.writeManifests({ 'app.yaml': docs('v3', 'd', true) });
      await until(
        'the change is held',
        async () => (await e.status()).objects.find((o) => o.name === 'app')?.message.includes('update lock held by the app'),
        30_000,
      );
      const held = (await e.running('app'))!;
      expect((await e.berth('exec', 'app', '--', '/bin/sh', '-c', 'kill $(cat /tmp/lockpid)')).code).toBe(0);
      const released = Date.now();
      const after = await until(
        'app recreated',
        async () => {
          const r = await e.running('app');
          return r && r.pid !== held.pid ? r : undefined;
        },
        30_000,
        200,
      );
      expect(after).toBeDefined();
      console.log(`update applied ${((Date.now() - released) / 1000).toFixed(1)} s after the lock's release (resync 10m)`);
    } finally {
      await daemon.stop();
      await e.writeConfig('');
    }
  }, 120_000);
});
