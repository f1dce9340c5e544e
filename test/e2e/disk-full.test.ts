/**
 * Disk full: berth's root on a 24 MiB tmpfs, an image larger than the free space. The pull step
 * fails before writing with a clear ResourceExhausted message naming the numbers; nothing is
 * corrupt (`content verify` clean, no half-written ingest), the running container is unaffected.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdir, readdir, statfs } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { pushImage } from '../helpers/images.ts';
import { startRegistry, type RunningRegistry } from '../helpers/registry.ts';
import { busyboxImage, containerDoc, E2eRoot, imageDoc, requireE2e } from '../helpers/e2e.ts';

const run = promisify(execFile);
let reg: RunningRegistry;
let e: E2eRoot;

beforeAll(async () => {
  requireE2e();
  reg = await startRegistry();
  await pushImage(reg.url, 'small', 'v1', await busyboxImage({ 'etc/version': 'small\n' }));
  await pushImage(reg.url, 'big', 'v1', await busyboxImage({ 'opt/big.bin': randomBytes(30 << 20) }));
  e = await E2eRoot.create('diskfull', { config: '[gc]\nreserve = "2Mi"' });
  await run('mount', ['-t', 'tmpfs', '-o', 'size=24m', 'berth-e2e-diskfull', e.root]);
  await mkdir(join(e.root, 'import'));
}, 60_000);

afterAll(async () => {
  await e?.cleanup(); // unmounts the tmpfs too
  await reg?.stop();
});

describe('disk full on a small tmpfs root', () => {
  it('a pull larger than the free space fails clearly; nothing corrupt, running containers unaffected', async () => {
    await e.writeManifests({ 'small.yaml': [imageDoc('small', `${reg.host}/small:v1`), containerDoc('small', { image: 'small' })] });
    const first = await e.berth('apply', '-f', e.manifests);
    expect(first.code, first.stdout + first.stderr).toBe(0);
    const before = (await e.running('small'))!;
    expect(before).toBeDefined();

    await e.writeManifests({
      'small.yaml': [imageDoc('small', `${reg.host}/small:v1`), containerDoc('small', { image: 'small' })],
      'big.yaml': [imageDoc('big', `${reg.host}/big:v1`), containerDoc('big', { image: 'big' })],
    });
    const apply = await e.berth('apply', '-f', e.manifests);
    expect(apply.code).toBe(1);
    const failed = apply.stdout.split('\n').find((l) => l.startsWith('FAILED'));
    expect(failed, apply.stdout).toMatch(
      /^FAILED +big: pull \(not present\): .*not enough disk space on .*: need 30\.\d MiB \+ reserve 2\.0 MiB = 3\d\.\d MiB, \d+(\.\d)? [KM]iB available/,
    );
    expect(apply.stdout).toMatch(/^blocked +big: create \(not present\): waits for pull:/m);
    expect(apply.stdout).toContain('NOT converged');

    // Nothing was written for it: no ingest, no half blob; the store verifies; the disk is not full.
    expect(await readdir(join(e.root, 'io.containerd.content.v1.content/ingest'))).toEqual([]);
    const verify = await e.verify();
    expect(verify.code, verify.stdout + verify.stderr).toBe(0);
    const fs = await statfs(e.root);
    expect(fs.bavail * fs.bsize).toBeGreaterThan(10 << 20);

    const after = (await e.running('small'))!;
    expect(after.pid).toBe(before.pid);
    const status = await e.status();
    const big = status.objects.find((o) => o.kind === 'Image' && o.name === 'big')!;
    expect(big.state).toBe('Stalled');
    expect(big.message).toMatch(/not enough disk space/);
    expect(status.objects.find((o) => o.kind === 'Container' && o.name === 'small')!.state).toBe('Ready');
  });
});
