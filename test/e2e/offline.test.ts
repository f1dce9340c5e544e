/**
 * Offline first: the registry is down at boot while the images are present. After a simulated
 * reboot (every task and supervisor killed, every mount gone) `berth apply` starts the containers
 * without waiting for the registry; the `pullPolicy: Always` image shows that its update check
 * waits (registry unreachable), and nothing else is blocked.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readFile } from 'node:fs/promises';
import { connect, createServer, type Socket } from 'node:net';
import { join } from 'node:path';
import { pushImage } from '../helpers/images.ts';
import { startRegistry, type RunningRegistry } from '../helpers/registry.ts';
import { busyboxImage, containerDoc, DEMO_REF, E2eRoot, imageDoc, requireE2e, sleep, unmountUnder } from '../helpers/e2e.ts';

let reg: RunningRegistry;
let e: E2eRoot;
let e2: E2eRoot | undefined;

beforeAll(async () => {
  requireE2e();
  reg = await startRegistry();
  await pushImage(reg.url, 'app', 'v1', await busyboxImage({ 'etc/version': 'offline\n' }));
  e = await E2eRoot.create('offline');
  await e.importDemo();
}, 60_000);

afterAll(async () => {
  await e2?.cleanup();
  await e?.cleanup();
  await reg?.stop();
});

/** What a power cut does to berth's containers: tasks and supervisors gone, mounts gone. */
async function simulateReboot(names: string[], root = e.root): Promise<void> {
  for (const name of names) {
    const rec = JSON.parse(await readFile(join(root, 'containers', name, 'state.json'), 'utf8')) as { task?: { pid?: number; shimPid?: number } };
    for (const pid of [rec.task?.shimPid, rec.task?.pid]) {
      if (!pid) continue;
      try {
        process.kill(pid, 'SIGKILL');
      } catch {}
    }
  }
  await sleep(300);
  await unmountUnder(join(root, 'containers'));
}

/** A TCP forwarder to the registry that can start hanging: connections accepted, never answered. */
async function hangableRegistry(target: RunningRegistry): Promise<{ host: string; hang(): void; stop(): Promise<void> }> {
  let hanging = false;
  const sockets = new Set<Socket>();
  const server = createServer((client) => {
    sockets.add(client);
    client.on('close', () => sockets.delete(client));
    client.on('error', () => {});
    if (hanging) return;
    const up = connect(Number(target.host.split(':')[1]), '127.0.0.1');
    up.on('error', () => client.destroy());
    client.pipe(up).pipe(client);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    host: `127.0.0.1:${(server.address() as { port: number }).port}`,
    hang: () => {
      hanging = true;
      for (const s of sockets) s.destroy();
    },
    stop: () =>
      new Promise<void>((resolve) => {
        for (const s of sockets) s.destroy();
        server.close(() => resolve());
      }),
  };
}

describe('registry down at boot, images present', () => {
  it('berth run at boot does not wait on a registry that hangs: containers start, the check finishes later', async () => {
    // (Before the next test stops the registry.)
    const hangable = await hangableRegistry(reg);
    try {
      e2 = await E2eRoot.create('offline-hang');
      await e2.importDemo();
      await e2.writeManifests({
        'app.yaml': [imageDoc('app', `${hangable.host}/app:v1`, 'Always'), containerDoc('h', { image: 'app' }), containerDoc('local2', { image: DEMO_REF })],
      });
      const first = await e2.berth('apply', '-f', e2.manifests);
      expect(first.code, first.stdout + first.stderr).toBe(0);

      hangable.hang();
      await simulateReboot(['h', 'local2'], e2.root);
      const daemon = e2.start('run', '-f', e2.manifests);
      try {
        await daemon.waitFor(/done +h: restart \(exit status lost/, 30_000);
        await daemon.waitFor(/done +local2: restart \(exit status lost/, 30_000);
        // The containers were up before the registry check gave up (its timeout is 10 s).
        expect(daemon.output()).not.toContain('cannot resolve image');
        const ps = await e2.ps();
        expect(
          ps
            .filter((c) => c.state === 'running')
            .map((c) => c.name)
            .sort(),
        ).toEqual(['h', 'local2']);
        // The check finishes in the background and marks the registry down.
        await daemon.waitFor(/cannot resolve image/, 20_000);
      } finally {
        await daemon.stop();
      }
    } finally {
      await hangable.stop();
    }
  }, 90_000);

  it('containers start, the Always image waits on its registry, nothing else is blocked', async () => {
    await e.writeManifests({
      'app.yaml': [imageDoc('app', `${reg.host}/app:v1`, 'Always'), containerDoc('remote', { image: 'app' }), containerDoc('local', { image: DEMO_REF })],
    });
    const first = await e.berth('apply', '-f', e.manifests);
    expect(first.code, first.stdout + first.stderr).toBe(0);
    const before = await e.ps();
    expect(
      before
        .filter((c) => c.state === 'running')
        .map((c) => c.name)
        .sort(),
    ).toEqual(['local', 'remote']);

    await reg.stop();
    await simulateReboot(['local', 'remote']);
    expect((await e.ps()).some((c) => c.state === 'running')).toBe(false);

    const started = Date.now();
    const boot = await e.berth('apply', '-f', e.manifests);
    const tookMs = Date.now() - started;
    // Not converged (the tag could not be checked), but everything that does not need the registry is done.
    expect(boot.code).toBe(1);
    expect(boot.stdout).toMatch(new RegExp(`waiting +app: update check waits \\(registry ${reg.host.replace(/\./g, '\\.')} unreachable; keeping sha256:`));
    expect(boot.stdout).not.toMatch(/^(blocked|FAILED)/m);
    expect(boot.stdout).toMatch(/done +remote: restart \(exit status lost \(reboot\?\); restartPolicy Always/);
    expect(boot.stdout).toMatch(/done +local: restart/);
    expect(tookMs).toBeLessThan(20_000);
    const after = await e.ps();
    expect(
      after
        .filter((c) => c.state === 'running')
        .map((c) => c.name)
        .sort(),
    ).toEqual(['local', 'remote']);

    const status = await e.status();
    const image = status.objects.find((o) => o.kind === 'Image' && o.name === 'app')!;
    expect(image.state).toBe('Reconciling');
    expect(image.message).toMatch(/unreachable/);
    for (const name of ['local', 'remote']) expect(status.objects.find((o) => o.kind === 'Container' && o.name === name)!.state).toBe('Ready');
    expect((await e.verify()).code).toBe(0);
  });
});
