/**
 * In `berth run` a pull outlives the turn that starts it: a device downloading a large image over
 * a slow link still converges everything else meanwhile. Here a pull crawls through a slowed
 * registry while a container on a present image is added: it runs before the pull ends, and the
 * slow image's container starts once its pull is done.
 */
import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { pushImage } from '../helpers/images.ts';
import { startFaultProxy, startRegistry, type FaultProxy, type RunningRegistry } from '../helpers/registry.ts';
import { busyboxImage, containerDoc, DEMO_REF, E2eRoot, imageDoc, requireE2e, type Background } from '../helpers/e2e.ts';

let reg: RunningRegistry;
let proxy: FaultProxy;
let e: E2eRoot;
let daemon: Background | undefined;

beforeAll(async () => {
  requireE2e();
  reg = await startRegistry();
  proxy = await startFaultProxy({ target: reg.url });
  await pushImage(reg.url, 'big', 'v1', await busyboxImage({ 'opt/big.bin': randomBytes(6 << 20) }));
  e = await E2eRoot.create('background-pull');
  await e.importDemo();
}, 120_000);

afterAll(async () => {
  await daemon?.stop();
  await e?.cleanup();
  await proxy?.stop();
  await reg?.stop();
});

describe('berth run with a slow pull', () => {
  it('converges the rest while the pull downloads, then starts what needed it', async () => {
    proxy.faults.push({ match: /\/blobs\//, action: { kind: 'slow', bytesPerSec: 1 << 20 } }); // ~6 s for the big layer
    await e.writeManifests({
      'slow.yaml': [imageDoc('big', `${proxy.host}/big:v1`), containerDoc('slow', { image: 'big', script: 'sleep 1000' })],
    });
    daemon = e.start('run', '-f', e.manifests);
    await daemon.waitFor(/waiting +big: pull \(not present\): pulling in the background/, 30_000);

    const from = daemon.output().length;
    await e.writeManifests({
      'slow.yaml': [imageDoc('big', `${proxy.host}/big:v1`), containerDoc('slow', { image: 'big', script: 'sleep 1000' })],
      'quick.yaml': [containerDoc('quick', { image: DEMO_REF, script: 'sleep 1000' })],
    });
    await daemon.waitFor(/done +quick: create \(not present\)/, 15_000, from);
    // The quick container runs while the slow image is still downloading.
    expect(daemon.output().slice(from)).not.toMatch(/done +big: pull/);
    expect((await e.running('quick'))?.state).toBe('running');
    expect(await e.running('slow')).toBeUndefined();

    await daemon.waitFor(/done +big: pull \(not present\)/, 60_000, from);
    await daemon.waitFor(/done +slow: create \(not present\)/, 15_000, from);
    expect((await e.running('slow'))?.state).toBe('running');
  }, 120_000);
});
