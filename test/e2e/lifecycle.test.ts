/**
 * The life of a manifest set through the real CLI (real runc, overlay mounts, SQLite, registry):
 * apply from scratch, a second apply that changes nothing, an env change (recreate, the named
 * volume's data survives), an image tag change (pull, then replace), a container removed from the
 * manifests (stopped, removed, garbage collected), and a broken manifest (nothing changes, Stalled).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { existsSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { pushImage, type BuiltImage } from '../helpers/images.ts';
import { startRegistry, type RunningRegistry } from '../helpers/registry.ts';
import { busyboxImage, containerDoc, DEMO_REF, E2eRoot, imageDoc, requireE2e, volumeDoc } from '../helpers/e2e.ts';

let reg: RunningRegistry;
let e: E2eRoot;
let appV1: string;
let appV2: string;
let v1Image: BuiltImage;

beforeAll(async () => {
  requireE2e();
  reg = await startRegistry();
  const v1 = await busyboxImage({ 'etc/version': 'v1\n' });
  const v2 = await busyboxImage({ 'etc/version': 'v2\n' });
  await pushImage(reg.url, 'app', 'v1', v1);
  await pushImage(reg.url, 'app', 'v2', v2);
  appV1 = v1.root.digest;
  v1Image = v1;
  appV2 = v2.root.digest;
  e = await E2eRoot.create('lifecycle');
  await e.importDemo();
}, 60_000);

afterAll(async () => {
  await e?.cleanup();
  await reg?.stop();
});

const one = (x: string) => containerDoc('one', { image: DEMO_REF, volume: 'data', env: { X: x }, script: 'echo "start $X" >> /data/log' });
const two = (_tag: string) => containerDoc('two', { image: 'app', script: 'cat /etc/version > /tmp/v' });
const app = (tag: string) => imageDoc('app', `${reg.host}/app:${tag}`);

describe('berth apply / plan through the CLI', () => {
  it('applies from scratch (exit 0, containers running), then a second apply and plan change nothing', async () => {
    await e.writeManifests({ 'one.yaml': [volumeDoc('data'), one('a')], 'two.yaml': [app('v1'), two('v1')] });
    const first = await e.berth('apply', '-f', e.manifests);
    expect(first.stderr).not.toMatch(/FAILED|internal error/);
    expect(first.code, first.stdout + first.stderr).toBe(0);
    expect(first.stdout).toMatch(/done +one: create \(not present\)/);
    expect(first.stdout).toMatch(/done +app: pull \(not present\)/);
    expect(first.stdout).toMatch(/converged in/);
    const ps = await e.ps();
    expect(ps.map((c) => [c.name, c.state]).sort()).toEqual([
      ['one', 'running'],
      ['two', 'running'],
    ]);
    expect(ps.find((c) => c.name === 'two')!.pid).toBeGreaterThan(0);

    const second = await e.berth('apply', '-f', e.manifests);
    expect(second.code).toBe(0);
    expect(second.stdout).toContain('no changes: the device is in the desired state');
    const plan = await e.berth('plan', '-f', e.manifests);
    expect(plan.code).toBe(0);
    expect(plan.stdout).toContain('no changes');
    // Nothing was restarted by the second apply.
    expect((await e.ps()).map((c) => c.pid).sort()).toEqual(ps.map((c) => c.pid).sort());
  });

  it('an env change: plan exits 2 naming it, apply recreates, data in the named volume survives', async () => {
    const before = (await e.running('one'))!;
    await e.writeManifests({ 'one.yaml': [volumeDoc('data'), one('b')], 'two.yaml': [app('v1'), two('v1')] });
    const plan = await e.berth('plan', '-f', e.manifests);
    expect(plan.code).toBe(2);
    expect(plan.stdout).toContain('one: recreate (env X changed)');
    expect(plan.stdout).not.toMatch(/two:/);

    const apply = await e.berth('apply', '-f', e.manifests);
    expect(apply.code, apply.stdout + apply.stderr).toBe(0);
    expect(apply.stdout).toMatch(/done +one: recreate \(env X changed\)/);
    const after = (await e.running('one'))!;
    expect(after.pid).not.toBe(before.pid);
    // The first task's line is still there, and the new one appended its own.
    expect(await readFile(join(e.root, 'volumes/data/log'), 'utf8')).toBe('start a\nstart b\n');
  });

  it('an image tag change pulls the new image before the old container is replaced', async () => {
    const before = (await e.running('two'))!;
    expect(before.imageDigest).toBe(appV1);
    await e.writeManifests({ 'one.yaml': [volumeDoc('data'), one('b')], 'two.yaml': [app('v2'), two('v2')] });
    const plan = await e.berth('plan', '-f', e.manifests);
    expect(plan.code).toBe(2);
    expect(plan.stdout).toMatch(/app: pull \(not present\)/);
    expect(plan.stdout).toMatch(new RegExp(`two: recreate \\(image ${reg.host}/app:v1 → ${reg.host}/app:v2\\)  \\[after pull:${reg.host}/app:v2\\]`));

    const apply = await e.berth('apply', '-f', e.manifests);
    expect(apply.code, apply.stdout + apply.stderr).toBe(0);
    const lines = apply.stdout.split('\n');
    const pulled = lines.findIndex((l) => /^done +app: pull/.test(l));
    const replaced = lines.findIndex((l) => /^done +two: recreate/.test(l));
    expect(pulled).toBeGreaterThanOrEqual(0);
    expect(replaced).toBeGreaterThan(pulled);

    // The events agree: Pulled is recorded before the old container was stopped for the Recreate.
    const events = (await e.status()).events; // oldest first
    const pulledAt = events.findIndex((ev) => ev.object.name === 'app' && ev.reason === 'Pulled' && ev.message.includes('app:v2'));
    const recreatedAt = events.findIndex((ev) => ev.object.name === 'two' && ev.reason === 'Recreated');
    expect(pulledAt).toBeGreaterThanOrEqual(0);
    expect(recreatedAt).toBeGreaterThan(pulledAt);

    const after = (await e.running('two'))!;
    expect(after.imageDigest).toBe(appV2);
    expect(after.pid).not.toBe(before.pid);
    expect((await e.verify()).code).toBe(0);
  });

  it('a tag that cannot be pulled leaves the old container running (nothing is stopped first)', async () => {
    const before = (await e.running('two'))!;
    await e.writeManifests({ 'one.yaml': [volumeDoc('data'), one('b')], 'two.yaml': [app('missing'), two('missing')] });
    const apply = await e.berth('apply', '-f', e.manifests);
    expect(apply.code).toBe(1);
    expect(apply.stdout).toMatch(/^FAILED +app: pull \(not present\): .*not found/m);
    expect(apply.stdout).toMatch(/^blocked +two: recreate .*: waits for pull:/m);
    const after = (await e.running('two'))!;
    expect(after.pid).toBe(before.pid);
    expect(after.imageDigest).toBe(appV2);
  });

  it('a container removed from the manifests is stopped and removed, and garbage is collected', async () => {
    const pid = (await e.running('two'))!.pid!;
    await e.writeManifests({ 'one.yaml': [volumeDoc('data'), one('b')] });
    const apply = await e.berth('apply', '-f', e.manifests);
    expect(apply.code, apply.stdout + apply.stderr).toBe(0);
    expect(apply.stdout).toMatch(/done +two: stop and remove \(no longer in the manifests\)/);
    expect(apply.stdout).toMatch(/done +collect garbage/);
    expect((await e.ps()).map((c) => c.name)).toEqual(['one']);
    expect(() => process.kill(pid, 0)).toThrow();
    // app:v1 is wanted by neither this generation nor the previous one: forgotten and collected;
    // app:v2 stays for the previous generation (a rollback needs no download).
    const images = await e.berth('images', '--json');
    expect(images.stdout).not.toContain('app:v1');
    expect(images.stdout).toContain('app:v2');
    const events = (await e.status()).events;
    expect(events.some((ev) => ev.reason === 'Removed' && ev.object.name === 'two')).toBe(true);
    const gc = events.filter((ev) => ev.reason === 'GarbageCollected').at(-1);
    expect(gc?.message).toContain(`images no longer wanted: ${reg.host}/app:v1`);
    expect(gc?.message).toMatch(/garbage collected: \d+ objects/);
    // The daemon's collection spares blobs younger than a minute (writers in flight); berth gc
    // (no grace) shows that what the forgotten image held is now garbage, and v2's is not.
    const blob = (d: string) => join(e.root, 'io.containerd.content.v1.content/blobs/sha256', d.slice(7));
    expect(existsSync(blob(appV1))).toBe(true);
    const collect = await e.berth('gc');
    expect(collect.code, collect.stderr).toBe(0);
    expect(existsSync(blob(appV1))).toBe(false);
    expect(existsSync(blob(appV2))).toBe(true);
    // The volume stays.
    expect(await readFile(join(e.root, 'volumes/data/log'), 'utf8')).toContain('start b');
    expect((await e.verify()).code).toBe(0);
  });

  it('an image only an older generation wanted is collected even when no container changes; one pulled by hand is kept', async () => {
    await pushImage(reg.url, 'app', 'hand', v1Image);
    const pulled = await e.berth('pull', `${reg.host}/app:hand`);
    expect(pulled.code, pulled.stderr).toBe(0);
    // A new generation that changes no container: app:v2 (kept so far for a rollback) retires.
    await e.writeManifests({ 'one.yaml': [volumeDoc('data'), volumeDoc('extra'), one('b')] });
    const plan = await e.berth('plan', '-f', e.manifests);
    expect(plan.code).toBe(2);
    expect(plan.stdout).toContain(`collect garbage (images no longer wanted: ${reg.host}/app:v2)`);
    const apply = await e.berth('apply', '-f', e.manifests);
    expect(apply.code, apply.stdout + apply.stderr).toBe(0);
    expect(apply.stdout).toMatch(/done +collect garbage \(images no longer wanted: .*app:v2\)/);
    expect(apply.stdout).not.toMatch(/one: /);
    const images = (await e.berth('images', '--json')).stdout;
    expect(images).not.toContain('app:v2');
    expect(images).toContain(`${reg.host}/app:hand`);
    expect((await e.berth('apply', '-f', e.manifests)).stdout).toContain('no changes');
  });

  it('a bad manifest: apply exits 1 naming file:line:col, nothing changes, status shows Manifests Stalled', async () => {
    const before = (await e.running('one'))!;
    const bad = `apiVersion: berth.dev/v1alpha1
kind: Container
metadata: {name: three}
spec:
  image: ${DEMO_REF}
  restartPolicy: Sometimes
`;
    await e.writeManifests({ 'one.yaml': [volumeDoc('data'), volumeDoc('extra'), one('c')], 'bad.yaml': bad });
    const apply = await e.berth('apply', '-f', e.manifests);
    expect(apply.code).toBe(1);
    expect(apply.stderr).toMatch(new RegExp(`${e.manifests}/bad\\.yaml:6:\\d+`));
    expect(apply.stderr).toContain('nothing applied');
    // Untouched: the same task, not recreated for X=c, and no `three`.
    const ps = await e.ps();
    expect(ps.map((c) => c.name)).toEqual(['one']);
    expect(ps[0]!.pid).toBe(before.pid);
    const plan = await e.berth('plan', '-f', e.manifests);
    expect(plan.code).toBe(1);

    const status = await e.status();
    const manifests = status.objects.find((o) => o.kind === 'Manifests')!;
    expect(manifests.state).toBe('Stalled');
    expect(manifests.message).toMatch(/bad\.yaml:6:\d+/);
    expect(manifests.message).toContain('the last applied generation keeps running');
    const text = await e.berth('status');
    expect(text.stdout).toMatch(/Stalled/);
    expect(appV1).not.toBe(appV2);
  });
});
