/**
 * A moved tag is rolled out like a manifest change (issue 9; what Podman's auto-update users ask
 * for): with `pullPolicy: Always`, a new image behind the same tag that makes the container exit is
 * rolled back, the old image and container come back, and that image is not taken again until the
 * tag moves on. Real registry, real runc, through `berth apply`.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { pushImage } from '../helpers/images.ts';
import { startRegistry, type RunningRegistry } from '../helpers/registry.ts';
import { busyboxImage, containerDoc, E2eRoot, imageDoc, requireE2e, until } from '../helpers/e2e.ts';

let reg: RunningRegistry;
let e: E2eRoot;

beforeAll(async () => {
  requireE2e();
  reg = await startRegistry();
  e = await E2eRoot.create('rollout-tag');
}, 60_000);

afterAll(async () => {
  await e?.cleanup();
  await reg?.stop();
});

const push = async (version: string) => pushImage(reg.url, 'app', 'latest', await busyboxImage({ 'etc/version': `${version}\n` }));
const version = async () => (await e.berth('exec', 'web', '--', '/bin/cat', '/etc/version')).stdout.trim();
const apply = () => e.berth('apply', '-f', e.manifests);

describe('pullPolicy: Always, a tag that moves', () => {
  it('rolls back an image that fails, does not take it again, and takes the next one', async () => {
    await push('good1');
    const script = 'case "$(cat /etc/version)" in bad*) exit 1;; esac; [ -f /marker ] || echo kept > /marker';
    await e.writeManifests({ 'web.yaml': [imageDoc('app', `${reg.host}/app:latest`, 'Always'), containerDoc('web', { image: 'app', script })] });
    expect((await apply()).code).toBe(0);
    await until('web running good1', async () => ((await version()) === 'good1' ? true : undefined));

    await push('bad');
    const bad = await apply();
    expect(bad.code, bad.stdout + bad.stderr).toBe(1);
    expect(bad.stdout).toMatch(/done +app: pull \(tag moved/);
    expect(bad.stdout).toMatch(/ROLLED BACK generation \d+: web: exited with code 1/);
    await until('good1 back', async () => ((await version()) === 'good1' ? true : undefined));
    expect((await e.berth('exec', 'web', '--', '/bin/cat', '/marker')).stdout).toBe('kept\n');

    const again = await apply();
    expect(again.stdout).not.toMatch(/^(done|FAILED) /m);

    await push('good2');
    const good = await apply();
    expect(good.code, good.stdout + good.stderr).toBe(0);
    expect(good.stdout).toMatch(/rollout: generation \d+ confirmed/);
    expect(await version()).toBe('good2');
  });
});
