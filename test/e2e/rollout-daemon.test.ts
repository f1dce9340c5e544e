/**
 * The daemon confirms and rolls back by itself (issue 9): `berth run` with real runc. A change
 * whose container exits is rolled back without anyone running a command, the old container's
 * writable layer comes back, and the same bad manifests are not retried; a good change is confirmed.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { DEMO_REF, E2eRoot, requireE2e, until, type Background } from '../helpers/e2e.ts';

let e: E2eRoot;
let daemon: Background;

beforeAll(async () => {
  requireE2e();
  e = await E2eRoot.create('rollout-daemon', { config: '[reconcile]\nresync_interval = "1s"' });
  await e.importDemo();
}, 60_000);

afterAll(async () => {
  await daemon?.stop();
  await e?.cleanup();
});

function web(version: string, command?: string[], healthcheck?: object): object[] {
  const script = `[ -f /marker ] || echo "written by ${version}" > /marker; trap 'exit 0' TERM; while true; do sleep 1; done`;
  return [
    {
      apiVersion: 'berth.dev/v1alpha1',
      kind: 'Container',
      metadata: { name: 'web' },
      spec: {
        image: DEMO_REF,
        command: command ?? ['/bin/sh', '-c', script],
        env: { VERSION: version },
        network: 'none',
        stopGracePeriod: '2s',
        update: { confirmAfter: '2s' },
        ...(healthcheck ? { healthcheck } : {}),
      },
    },
  ];
}

async function rollout(): Promise<{ state: string; reason: string; message: string } | undefined> {
  return (await e.status()).objects.find((o) => o.kind === 'Rollout') as { state: string; reason: string; message: string } | undefined;
}

describe('berth run rolls out by itself', () => {
  it('rolls back a change whose container exits, restoring the old one, and does not retry it', async () => {
    await e.writeManifests({ 'web.yaml': web('v1') });
    daemon = e.start('run', '-f', e.manifests);
    await until('v1 running', () => e.running('web'), 30_000);
    await until('the marker', () => readFileSync(join(e.root, 'containers/web/rootfs/marker'), 'utf8').includes('v1'), 10_000).catch(() => undefined);

    await e.writeManifests({ 'web.yaml': web('v2', ['/bin/sh', '-c', 'exit 4']) });
    const rolled = await until('rolled back', async () => ((await rollout())?.reason === 'RolledBack' ? rollout() : undefined), 30_000);
    expect(rolled!.message).toMatch(/web: exited with code 4/);
    const back = await until('web running again', () => e.running('web'), 15_000);
    expect(readFileSync(join(e.root, 'containers/web/rootfs/marker'), 'utf8')).toBe('written by v1\n');

    // Several resync turns later, nothing was recreated.
    const events = async () => (await e.status()).events.filter((ev) => ev.reason === 'Recreated' || ev.reason === 'Restored').length;
    const seen = await events();
    await new Promise((r) => setTimeout(r, 3000));
    expect(await events()).toBe(seen);
    expect((await e.running('web'))!.pid).toBe(back.pid);
  });

  it('confirms a good change after confirmAfter and once healthy; status shows the health', async () => {
    await e.writeManifests({ 'web.yaml': web('v3', undefined, { exec: ['/bin/cat', '/marker'], interval: '500ms', retries: 2 }) });
    const ok = await until('confirmed', async () => ((await rollout())?.reason === 'Confirmed' ? rollout() : undefined), 30_000);
    expect(ok!.state).toBe('Ready');
    const r = await e.berth('rollout', 'history', '--json');
    expect(JSON.parse(r.stdout)[0]).toMatchObject({ result: 'Confirmed', changed: ['web'] });
    const status = (await e.status()).objects.find((o) => o.kind === 'Container' && o.name === 'web')!;
    expect(status.message).toBe('running (healthy)');
  });
});
