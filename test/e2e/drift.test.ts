/**
 * Drift repaired by the daemon (`berth run` in the background, real runc, overlay, registry): a
 * task killed (restarted by policy after its back-off), a container removed behind berth's back
 * (created again), a blob deleted or corrupted in the content store (fetched again; `content
 * verify` clean), an image layer's snapshot directory removed (unpacked again, its containers made
 * again). Each repair is an event in `berth status` and a line in the daemon's log.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { execFile } from 'node:child_process';
import { chmod, open, readFile, rm, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { pushImage, type BuiltImage } from '../helpers/images.ts';
import { startRegistry, type RunningRegistry } from '../helpers/registry.ts';
import { busyboxImage, containerDoc, E2eRoot, imageDoc, requireE2e, unmountUnder, until, type Background } from '../helpers/e2e.ts';

const run = promisify(execFile);
let reg: RunningRegistry;
let e: E2eRoot;
let img: BuiltImage;
let daemon: Background;

const blobPath = (digest: string) => join(e.root, 'io.containerd.content.v1.content/blobs/sha256', digest.slice(7));

async function eventsSince(id: number) {
  return (await e.status()).events.filter((ev) => (ev as unknown as { id: number }).id > id);
}
async function lastEventId(): Promise<number> {
  const evs = (await e.status()).events as unknown as Array<{ id: number }>;
  return evs.at(-1)?.id ?? 0;
}
async function waitEvent(after: number, what: string, pred: (ev: Awaited<ReturnType<typeof eventsSince>>[number]) => boolean, timeoutMs = 20_000) {
  return until(what, async () => (await eventsSince(after)).find(pred), timeoutMs, 250);
}

beforeAll(async () => {
  requireE2e();
  reg = await startRegistry();
  img = await busyboxImage({ 'etc/version': 'drift\n' });
  await pushImage(reg.url, 'app', 'v1', img);
  e = await E2eRoot.create('drift', { config: '[reconcile]\nresync_interval = "1s"' });
  await e.writeManifests({
    'app.yaml': [imageDoc('app', `${reg.host}/app:v1`), containerDoc('a', { image: 'app' }), containerDoc('b', { image: 'app' })],
  });
  daemon = e.start('run', '-f', e.manifests);
  await until('a and b running', async () => (await e.running('a')) && (await e.running('b')), 30_000, 250);
}, 60_000);

afterAll(async () => {
  await daemon?.stop();
  await e?.cleanup();
  await reg?.stop();
});

describe('berth run repairs drift', () => {
  it('a task killed with kill -9 is restarted by policy after its back-off', async () => {
    const since = await lastEventId();
    const before = (await e.running('a'))!;
    const killedAt = Date.now();
    process.kill(before.pid!, 'SIGKILL');
    const after = await until(
      'a running again',
      async () => {
        const c = await e.running('a');
        return c && c.pid !== before.pid ? c : undefined;
      },
      30_000,
      200,
    );
    const tookMs = Date.now() - killedAt;
    expect(tookMs).toBeGreaterThan(9_000); // the first back-off is 10 s
    expect(tookMs).toBeLessThan(20_000);
    expect(after.restarts).toBeGreaterThanOrEqual(1);
    const ev = await waitEvent(since, 'Restarted event for a', (ev) => ev.object.name === 'a' && ev.reason === 'Restarted');
    expect(ev.message).toMatch(/a: restart \(exited with code 137; restartPolicy Always; restart 1\)/);
    expect(daemon.output()).toMatch(/a: restart \(exited with code 137/);
  }, 40_000);

  it("a container removed behind berth's back is created again", async () => {
    const since = await lastEventId();
    const before = (await e.running('b'))!;
    await run('runc', ['--root', join(e.root, 'runtime/runc'), 'delete', '-f', 'b']);
    await unmountUnder(join(e.root, 'containers/b'));
    await rm(join(e.root, 'containers/b'), { recursive: true, force: true });
    const ev = await waitEvent(since, 'Repaired event for b', (ev) => ev.object.name === 'b' && ev.reason === 'Repaired');
    expect(ev.message).toContain('b: create (container missing: removed outside berth)');
    const after = await until('b running', () => e.running('b'));
    expect(after.pid).not.toBe(before.pid);
    expect(daemon.output()).toContain('b: create (container missing: removed outside berth)');
  });

  it('a blob deleted from the content store is fetched again from the registry', async () => {
    const since = await lastEventId();
    const layer = img.layers![1]!.digest;
    await rm(blobPath(layer));
    const ev = await waitEvent(since, 'Repaired event for app', (ev) => ev.object.name === 'app' && ev.reason === 'Repaired');
    expect(ev.message).toContain('app: pull (repair: blobs missing)');
    expect((await stat(blobPath(layer))).size).toBe(img.layers![1]!.size);
    const verify = await e.verify();
    expect(verify.code, verify.stdout + verify.stderr).toBe(0);
    expect(daemon.output()).toContain('app: pull (repair: blobs missing)');
  });

  it('a blob corrupted on disk (same size) is detected and fetched again', async () => {
    const since = await lastEventId();
    const layer = img.layers![0]!;
    const path = blobPath(layer.digest);
    await chmod(path, 0o644);
    const fh = await open(path, 'r+');
    await fh.write(Buffer.from('garbage!'), 0, 8, Math.floor(layer.size / 2));
    await fh.close();
    // (No `content verify` here to show the damage: the daemon may repair it first.)
    const ev = await waitEvent(since, 'Repaired event for app', (ev) => ev.object.name === 'app' && ev.reason === 'Repaired');
    expect(ev.message).toContain('app: pull (repair: 1 blob(s) corrupt on disk)');
    const verify = await e.verify();
    expect(verify.code, verify.stdout + verify.stderr).toBe(0);
    expect(daemon.output()).toMatch(/blobs corrupt on disk/);
    expect((await readFile(path)).includes(Buffer.from('garbage!'))).toBe(false);
  });

  it('an image layer snapshot directory removed is unpacked again, and its containers made again', async () => {
    const since = await lastEventId();
    const pids = [(await e.running('a'))!.pid, (await e.running('b'))!.pid];
    const ls = JSON.parse((await e.berth('snapshots', 'ls', '--json')).stdout) as {
      snapshots: Array<{ key: string; id: string; kind: string; parent: string | null }>;
    };
    const committed = ls.snapshots.filter((s) => s.kind === 'committed');
    const top = committed.find((s) => s.parent !== null)!; // the image's second layer
    expect(top).toBeDefined();
    await rm(join(e.root, 'io.containerd.snapshotter.v1.overlayfs/snapshots', top.id), { recursive: true, force: true });
    const ev = await waitEvent(since, 'Repaired event for app', (ev) => ev.object.name === 'app' && ev.reason === 'Repaired');
    expect(ev.message).toContain('app: pull (repair: snapshots missing)');
    for (const name of ['a', 'b']) {
      await until(
        `${name} running again`,
        async () => {
          const c = await e.running(name);
          return c && !pids.includes(c.pid) ? c : undefined;
        },
        20_000,
        250,
      );
    }
    const after = JSON.parse((await e.berth('snapshots', 'ls', '--json')).stdout) as typeof ls;
    const remade = after.snapshots.find((s) => s.key === top.key)!;
    expect(remade.kind).toBe('committed');
    await stat(join(e.root, 'io.containerd.snapshotter.v1.overlayfs/snapshots', remade.id, 'fs/etc/version'));
    const repaired = await eventsSince(since);
    expect(repaired.filter((ev) => ev.reason === 'Repaired' && ['a', 'b'].includes(ev.object.name))).toHaveLength(2);
    // Their reason says why berth made them again, not "removed outside berth".
    expect(daemon.output()).toMatch(
      /b: create \(container missing: (layers of its root filesystem are gone from disk|a layer of image .* was lost and unpacked again)\)/,
    );
    expect(daemon.output()).toMatch(/removed layer snapshots whose directory was gone/);
    // Nothing else is left to do.
    expect((await e.berth('plan', '-f', e.manifests)).code).toBe(0);
  });
});
