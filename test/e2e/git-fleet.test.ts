/**
 * `berth validate --device-labels … -f repo/` through the CLI: what each device class would run and
 * from which files, so CI can check every class before a merge; an undefined variable fails the
 * check with its place.
 */
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { E2eRoot } from '../helpers/e2e.ts';

let repo: string;
let e: E2eRoot;

const web = `apiVersion: berth.dev/v1alpha1
kind: Container
metadata: { name: web }
spec:
  image: busybox:latest
  env: { SITE: "\${device.labels.site}" }
`;
const camera = `apiVersion: berth.dev/v1alpha1
kind: Container
selector: { matchLabels: { model: rpi4 } }
metadata: { name: camera }
spec: { image: busybox:latest }
`;
const patch = `apiVersion: berth.dev/v1alpha1
kind: Container
metadata: { name: web }
spec: { env: { EXTRA: "7" } }
`;

beforeAll(async () => {
  repo = await mkdtemp(join(tmpdir(), 'berth-fleet-cli-'));
  for (const [p, text] of Object.entries({ 'base/web.yaml': web, 'base/camera.yaml': camera, 'devices/kiosk-7/web.yaml': patch })) {
    await mkdir(dirname(join(repo, p)), { recursive: true });
    await writeFile(join(repo, p), text);
  }
  e = await E2eRoot.create('git-fleet');
});

afterAll(async () => {
  await e?.cleanup();
  if (repo) await rm(repo, { recursive: true, force: true });
});

describe('berth validate --device-labels', () => {
  it('shows what each device class would run, and from which files', async () => {
    const kiosk = await e.berth('validate', '--device-labels', 'site=berlin,model=rpi4', '--device-name', 'kiosk-7', '-f', repo);
    expect(kiosk.stderr).toBe('');
    expect(kiosk.code).toBe(0);
    expect(kiosk.stdout).toContain('2 containers');
    expect(kiosk.stdout).toContain('device kiosk-7 (site=berlin,model=rpi4) runs:');
    expect(kiosk.stdout).toContain(`Container/camera  from ${join(repo, 'base/camera.yaml')}`);
    expect(kiosk.stdout).toContain(`Container/web  from ${join(repo, 'base/web.yaml')} + ${join(repo, 'devices/kiosk-7/web.yaml')}`);

    const sensor = await e.berth('validate', '--device-labels', 'site=paris,model=x86', '--device-name', 'sensor-1', '-f', repo);
    expect(sensor.code).toBe(0);
    expect(sensor.stdout).toContain('1 container,');
    expect(sensor.stdout).toContain(`Container/web  from ${join(repo, 'base/web.yaml')}\n`);
    expect(sensor.stdout).not.toContain('camera');
  });

  it('an undefined variable fails the check, at its place', async () => {
    const r = await e.berth('validate', '--device-labels', 'model=rpi4', '-f', repo);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain(`${join(repo, 'base/web.yaml')}:6:17: \${device.labels.site} is not defined`);
  });
});
