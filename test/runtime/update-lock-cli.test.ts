/**
 * The update lock through the real CLI: `[updates] lock_path` from the config file reaches every
 * container `berth apply` makes (overlay rootfs, real runc); the app takes it with flock and berth
 * sees it held (a removal waits for it); removing the container removes the host file.
 */
import { existsSync } from 'node:fs';
import { lstat, readFile } from 'node:fs/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { updateLockFile, updateLockHeld } from '../../src/runtime/update-lock.ts';
import { busyboxImage, containerDoc, E2eRoot, imageDoc, requireE2e, until } from '../helpers/e2e.ts';
import { pushImage } from '../helpers/images.ts';
import { startRegistry, type RunningRegistry } from '../helpers/registry.ts';
import { buildFlockHold } from './fixtures/flock-hold.ts';

let reg: RunningRegistry;
let e: E2eRoot;

beforeAll(async () => {
  requireE2e();
  e = await E2eRoot.create('update-lock', { config: '[updates]\nlock_path = "/run/app/update.lock"' });
  const flockHold = await readFile(buildFlockHold(e.dir));
  reg = await startRegistry();
  await pushImage(reg.url, 'locker', 'v1', await busyboxImage({ 'bin/flock-hold': { content: flockHold, mode: 0o755 } }));
}, 60_000);

afterAll(async () => {
  await e?.cleanup();
  await reg?.stop();
});

describe('the update lock through berth apply', () => {
  it('is at lock_path in the container; the app holds it: held; the container is removed: the file goes', async () => {
    const docs = [imageDoc('locker', `${reg.host}/locker:v1`), containerDoc('app', { image: 'locker', script: '/bin/flock-hold /run/app/update.lock & true' })];
    await e.writeManifests({ 'app.yaml': docs });
    const applied = await e.berth('apply', '-f', e.manifests);
    expect(applied.code, applied.stdout + applied.stderr).toBe(0);

    const file = updateLockFile(e.root, 'app');
    const st = await lstat(file);
    expect(st.isFile() && (st.mode & 0o7777) === 0o644).toBe(true);
    await until('the app to hold its update lock', async () => (await updateLockHeld(e.root, 'app')).held);

    await e.writeManifests({});
    // Removing it stops the app: held while the app holds its lock; --force goes through.
    const held = await e.berth('apply', '-f', e.manifests, '--allow-empty');
    expect(held.code).toBe(1);
    expect(held.stdout).toContain('app: Waiting (update lock held by the app) (then stop and remove');
    expect(await e.running('app')).toBeDefined();
    const removed = await e.berth('apply', '-f', e.manifests, '--allow-empty', '--force');
    expect(removed.code, removed.stdout + removed.stderr).toBe(0);
    expect(existsSync(file)).toBe(false);
    expect(await updateLockHeld(e.root, 'app')).toEqual({ held: false, heldForMs: 0 });
  });
});
