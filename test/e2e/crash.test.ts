/**
 * `kill -9` of `berth apply` at several points — mid-pull (a registry slowed by the fault proxy),
 * mid-unpack, right after the first container started — then a second apply converges: exit 0,
 * `content verify` clean, every desired container running exactly once, nothing left to plan.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { readdir, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { buildImage, pushImage, type BuiltImage } from '../helpers/images.ts';
import { startFaultProxy, startRegistry, type FaultProxy, type RunningRegistry } from '../helpers/registry.ts';
import { busyboxImage, containerDoc, E2eRoot, imageDoc, requireE2e, until } from '../helpers/e2e.ts';

const run = promisify(execFile);
let reg: RunningRegistry;
let proxy: FaultProxy;
let e: E2eRoot;
let big: BuiltImage;
let many: BuiltImage;

const BIG = 8 << 20;
const NAMES = ['c1', 'c2', 'c3'];

beforeAll(async () => {
  requireE2e();
  reg = await startRegistry();
  proxy = await startFaultProxy({ target: reg.url });
  // v1: one big incompressible layer (slow to fetch through the proxy).
  big = await busyboxImage({ 'opt/big.bin': randomBytes(BIG) });
  await pushImage(reg.url, 'app', 'v1', big);
  // v2: a layer of many files (slow to unpack: each file is created, written and chowned).
  const files: Record<string, Buffer> = {};
  for (let i = 0; i < 3000; i++) files[`opt/many/${i}.bin`] = randomBytes(4096);
  const base = await busyboxImage();
  many = await buildImage({ layers: [{ tar: base.layerTars![0]! }, { files }], config: { Env: ['PATH=/bin'], Cmd: ['/bin/sh'] } });
  await pushImage(reg.url, 'app', 'v2', many);
  e = await E2eRoot.create('crash');
}, 120_000);

afterAll(async () => {
  await e?.cleanup();
  await proxy?.stop();
  await reg?.stop();
});

const manifests = (tag: string, env: string) => ({
  'app.yaml': [imageDoc('app', `${proxy.host}/app:${tag}`), ...NAMES.map((n) => containerDoc(n, { image: 'app', env: { E: env } }))],
});

/** The second apply converges and everything is consistent. */
async function convergesAgain(digest: string): Promise<void> {
  const again = await e.berth('apply', '-f', e.manifests);
  expect(again.code, again.stdout + again.stderr).toBe(0);
  const ps = await e.ps();
  expect(ps.map((c) => c.name).sort()).toEqual(NAMES);
  for (const c of ps) {
    expect(c.state).toBe('running');
    expect(c.imageDigest).toBe(digest);
  }
  // runc knows each container once, and no other.
  const { stdout } = await run('runc', ['--root', join(e.root, 'runtime/runc'), 'list', '-q']);
  expect(stdout.trim().split('\n').sort()).toEqual(NAMES);
  const verify = await e.verify();
  expect(verify.code, verify.stdout + verify.stderr).toBe(0);
  const plan = await e.berth('plan', '-f', e.manifests);
  expect(plan.code, plan.stdout).toBe(0);
}

async function largestIngest(): Promise<number> {
  const dir = join(e.root, 'io.containerd.content.v1.content/ingest');
  let max = 0;
  for (const d of await readdir(dir).catch(() => [] as string[])) {
    const s = await stat(join(dir, d, 'data')).catch(() => undefined);
    if (s && s.size > max) max = s.size;
  }
  return max;
}

describe('kill -9 of berth apply, then apply again', () => {
  it('killed mid-pull (slow registry): the second apply resumes and converges', async () => {
    await e.writeManifests(manifests('v1', 'one'));
    proxy.faults.push({ match: /\/blobs\//, action: { kind: 'slow', bytesPerSec: 2 << 20 } });
    const apply = e.start('apply', '-f', e.manifests);
    // (More than the busybox layer could be: this is the big one.)
    await until('3 MiB of the big layer fetched', async () => (await largestIngest()) > 3 << 20, 30_000, 50);
    apply.child.kill('SIGKILL');
    const killed = await apply.done;
    expect(killed.code).not.toBe(0);
    expect(killed.stdout).not.toMatch(/converged/);
    expect(existsSync(join(e.root, 'io.containerd.content.v1.content/blobs/sha256', big.layers![1]!.digest.slice(7)))).toBe(false);

    proxy.faults.length = 0;
    proxy.requests.length = 0;
    await convergesAgain(big.root.digest);
    // It resumed where the killed one stopped rather than starting over.
    const layerRequests = proxy.requests.filter((r) => r.path.includes(big.layers![1]!.digest));
    expect(
      layerRequests.some((r) => r.range !== undefined),
      JSON.stringify(layerRequests),
    ).toBe(true);
  }, 90_000);

  it('killed mid-unpack: the second apply unpacks again and converges', async () => {
    await e.writeManifests(manifests('v2', 'one'));
    const layer = join(e.root, 'io.containerd.content.v1.content/blobs/sha256', many.layers![1]!.digest.slice(7));
    const apply = e.start('apply', '-f', e.manifests);
    // Once the many-files layer is committed its unpack is running (it takes a while).
    await until('the many-files layer committed', () => existsSync(layer), 30_000, 5);
    apply.child.kill('SIGKILL');
    const killed = await apply.done;
    expect(killed.stdout).not.toMatch(/done +app: pull/);
    await convergesAgain(many.root.digest);
  }, 90_000);

  it('killed right after the first container started: no duplicates, the rest converge', async () => {
    await e.writeManifests(manifests('v2', 'two'));
    const apply = e.start('apply', '-f', e.manifests);
    await apply.waitFor(/done +c\d: recreate/, 30_000);
    apply.child.kill('SIGKILL');
    await apply.done;
    await convergesAgain(many.root.digest);
    const status = await e.status();
    expect(status.objects.filter((o) => o.kind === 'Container').every((o) => o.state === 'Ready')).toBe(true);
  }, 90_000);
});
