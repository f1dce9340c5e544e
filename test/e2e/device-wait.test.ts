/**
 * A device that is not plugged in holds back only the container that needs it (issue 11):
 * `Waiting (device … not present)` in the apply output and in status, the rest of the set is
 * applied, and once the node appears the container starts; unplugged again while it runs, an
 * event says so. Real runc, through the CLI.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { execFileSync } from 'node:child_process';
import { rmSync } from 'node:fs';
import { join } from 'node:path';
import { DEMO_REF, E2eRoot, containerDoc, requireE2e } from '../helpers/e2e.ts';

let e: E2eRoot;

beforeAll(async () => {
  requireE2e();
  e = await E2eRoot.create('device-wait');
  await e.importDemo();
}, 60_000);

afterAll(async () => {
  await e?.cleanup();
});

describe('a device that comes later', () => {
  it('waits for it, applies the rest, and starts once the node exists', async () => {
    const dev = join(e.dir, 'ttyFAKE0');
    const reader = { ...(containerDoc('reader', { image: DEMO_REF }) as { spec: object }) };
    (reader.spec as Record<string, unknown>).devices = [`${dev}:/dev/ttyFAKE0`];
    await e.writeManifests({ 'set.yaml': [reader, containerDoc('other', { image: DEMO_REF })] });

    const first = await e.berth('apply', '-f', e.manifests);
    expect(first.code).toBe(1);
    expect(first.stdout).toContain(`Waiting (device ${dev} not present)`);
    expect(first.stdout).not.toMatch(/FAILED/);
    expect((await e.ps()).map((c) => `${c.name}:${c.state}`)).toEqual(['other:running']);
    const status = await e.status();
    expect(status.objects.find((o) => o.kind === 'Container' && o.name === 'reader')).toMatchObject({ state: 'Reconciling', reason: 'Waiting' });

    execFileSync('mknod', ['-m', '666', dev, 'c', '1', '3']); // plugged in: a null device
    const second = await e.berth('apply', '-f', e.manifests);
    expect(second.code, second.stdout + second.stderr).toBe(0);
    expect(await e.running('reader')).toBeDefined();

    // Unplugged while it runs: an event says so; the container keeps running.
    rmSync(dev);
    await e.berth('apply', '-f', e.manifests);
    const events = (await e.status()).events.filter((ev) => ev.reason === 'DeviceGone');
    expect(events.map((ev) => ev.message)).toEqual([`reader: device ${dev} disappeared while the container runs`]);
    expect(await e.running('reader')).toBeDefined();
  });
});
