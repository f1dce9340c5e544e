/** pull() end to end against a real registry: platforms, layers, leases, dedup, the unpack hook. */
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startRegistry, startFaultProxy, type RunningRegistry, type FaultProxy } from '../helpers/registry.ts';
import { buildImage, buildIndex, pushImage, type BuiltImage } from '../helpers/images.ts';
import { pull, type PullEvent } from '../../src/images/pull.ts';
import { BlobFetches } from '../../src/images/blob-fetches.ts';
import { RegistryClient, type FetchResult } from '../../src/remotes/registry.ts';
import { openContentStore, type LocalContentStore } from '../../src/content/local-store.ts';
import { Metadata } from '../../src/metadata/metadata.ts';
import { configFromObject, type Config } from '../../src/config/config.ts';
import { silentLogger } from '../../src/log.ts';
import { hostPlatform, formatPlatform } from '../../src/oci/platform.ts';
import { isKind } from '../../src/errors.ts';
import { randomBytes } from 'node:crypto';
import { execFileSync } from 'node:child_process';
import { mkdir } from 'node:fs/promises';

let reg: RunningRegistry;
let proxy: FaultProxy;
let amd: BuiltImage;
let arm: BuiltImage;
let multi: BuiltImage;
let dockerMulti: BuiltImage;
let layered: BuiltImage;
let big: BuiltImage;

beforeAll(async () => {
  reg = await startRegistry();
  proxy = await startFaultProxy({ target: reg.url });
  amd = await buildImage({ platform: 'linux/amd64', layers: [{ files: { 'etc/os': 'amd64\n' } }] });
  arm = await buildImage({ platform: 'linux/arm64', layers: [{ files: { 'etc/os': 'arm64\n' } }, { files: { 'etc/x': 'x' } }] });
  multi = buildIndex([amd, arm], { attestation: true });
  const amdD = await buildImage({ platform: 'linux/amd64', layers: [{ files: { 'd/amd': '1' } }], mediaTypes: 'docker' });
  const armD = await buildImage({ platform: 'linux/arm/v7', layers: [{ files: { 'd/arm': '2' } }], mediaTypes: 'docker' });
  dockerMulti = buildIndex([amdD, armD], { mediaTypes: 'docker' });
  layered = await buildImage({
    layers: [
      { files: { 'a/1': 'one' }, compression: 'gzip' },
      { files: { 'b/2': 'two' }, compression: 'zstd' },
      { files: { 'c/3': 'three' }, compression: 'none' },
      { files: { 'd/4': Buffer.alloc(200_000, 7) } },
    ],
  });
  await pushImage(reg.url, 'multi', 'v1', multi);
  await pushImage(reg.url, 'dmulti', 'v1', dockerMulti);
  await pushImage(reg.url, 'layered', 'v1', layered);
  big = await buildImage({ layers: [{ files: { 'big.bin': randomBytes(3 << 20) }, compression: 'none' }] });
  await pushImage(reg.url, 'big', 'v1', big);
});
afterAll(async () => {
  await proxy?.stop();
  await reg?.stop();
});

let tmp: string;
let store: LocalContentStore;
let metadata: Metadata;
let config: Config;
beforeEach(async () => {
  tmp = await mkdtemp(join(tmpdir(), 'berth-pull-'));
  store = await openContentStore(tmp);
  metadata = Metadata.open(join(tmp, 'metadata.db'));
  config = configFromObject({ root: tmp, registry: { config_path: join(tmp, 'certs.d'), docker_config: join(tmp, 'none.json') } });
  proxy.requests.length = 0;
  proxy.faults.length = 0;
});
afterEach(async () => {
  metadata.close();
  await rm(tmp, { recursive: true, force: true });
});

const base = () => ({ config, log: silentLogger(), store, metadata });

describe('pull', () => {
  it('picks the requested platform from an index, ignores attestations, records the image', async () => {
    const events: PullEvent[] = [];
    const r = await pull({ ...base(), ref: `${reg.host}/multi:v1`, platform: 'linux/arm64', onProgress: (e) => events.push(e) });
    expect(r.record).toMatchObject({
      name: `${reg.host}/multi:v1`,
      target: { digest: multi.root.digest, mediaType: 'application/vnd.oci.image.index.v1+json', size: multi.root.size },
      manifestDigest: arm.root.digest,
      configDigest: arm.config!.digest,
      platform: 'linux/arm64',
    });
    const expectedSize = arm.root.size + arm.config!.size + arm.layers!.reduce((n, l) => n + l.size, 0);
    expect(r.record.size).toBe(expectedSize);
    for (const d of [multi.root, arm.root, arm.config!, ...arm.layers!]) expect(await store.has(d.digest)).toBe(true);
    for (const d of amd.layers!) expect(await store.has(d.digest)).toBe(false);
    expect(metadata.getImage(`${reg.host}/multi:v1`)?.manifestDigest).toBe(arm.root.digest);
    expect(metadata.listLeases()).toEqual([]); // the pull's lease is gone
    expect(events.map((e) => e.type)).toContain('blob-done');
    expect(events.at(-1)?.type).toBe('done');
  });

  it('defaults to the host platform; Docker manifest lists work too', async () => {
    const host = formatPlatform(hostPlatform());
    expect(host).toBe('linux/amd64'); // the images above are built for the lab machine
    const r = await pull({ ...base(), ref: `${reg.host}/multi:v1` });
    expect(r.record.manifestDigest).toBe(amd.root.digest);
    const d = await pull({ ...base(), ref: `${reg.host}/dmulti:v1`, platform: 'linux/arm/v7' });
    expect(d.record.platform).toBe('linux/arm/v7');
    expect(d.record.target.mediaType).toBe('application/vnd.docker.distribution.manifest.list.v2+json');
    const err = await pull({ ...base(), ref: `${reg.host}/multi:v1`, platform: 'linux/s390x' }).catch((e) => e);
    expect(isKind(err, 'NotFound')).toBe(true);
    expect(err.message).toMatch(/no manifest for platform linux\/s390x \(the image offers: linux\/amd64, linux\/arm64\)/);
  });

  it('fetches multi-layer images (gzip, zstd, plain) and skips blobs already committed', async () => {
    const r1 = await pull({ ...base(), ref: `${reg.host}/layered:v1` });
    expect(r1.blobs.filter((b) => !b.skipped)).toHaveLength(4);
    const r2 = await pull({ ...base(), ref: `${reg.host}/layered:v1` });
    expect(r2.blobs.every((b) => b.skipped)).toBe(true);
    expect(r2.record.createdAt.getTime()).toBe(r1.record.createdAt.getTime());
  });

  it('two concurrent pulls in one process fetch each blob once', async () => {
    const fetches = new BlobFetches<FetchResult>();
    const client = new RegistryClient({ config, log: silentLogger() });
    proxy.faults.push({ match: /^GET .*blobs/, action: { kind: 'slow', bytesPerSec: 2_000_000 } });
    const ref = `${proxy.host}/layered:v1`;
    await Promise.all([pull({ ...base(), ref, fetches, client }), pull({ ...base(), ref, fetches, client })]);
    await client.close();
    for (const l of layered.layers!) {
      expect(proxy.requests.filter((q) => q.method === 'GET' && q.path.includes(l.digest))).toHaveLength(1);
    }
  });

  it('lets an unpacker apply layer i while later layers download, and records its result', async () => {
    proxy.faults.push({ match: new RegExp(`^GET .*blobs/${layered.layers![3]!.digest}`), action: { kind: 'slow', bytesPerSec: 100_000 } });
    const order: string[] = [];
    const committed: number[] = [];
    const r = await pull({
      ...base(),
      ref: `${proxy.host}/layered:v1`,
      onLayerCommitted: (i) => committed.push(i),
      unpack: async (ctx) => {
        expect(ctx.config.rootfs.diff_ids).toEqual(layered.diffIds);
        for (let i = 0; i < ctx.manifest.layers.length; i++) {
          await ctx.whenLayerCommitted(i);
          order.push(`apply ${i} (layer 3 ${committed.includes(3) ? 'done' : 'still downloading'})`);
        }
        return { snapshotter: 'test', chainIds: ['sha256:' + 'c'.repeat(64)] };
      },
    });
    expect(order[0]).toBe('apply 0 (layer 3 still downloading)');
    expect(committed.sort()).toEqual([0, 1, 2, 3]);
    expect(r.record.snapshotter).toBe('test');
    expect(metadata.getImage(r.record.name)?.chainIds).toEqual(['sha256:' + 'c'.repeat(64)]);
  });

  it('a failing layer fails the pull with its own error and records nothing', async () => {
    proxy.faults.push({ match: new RegExp(`blobs/${layered.layers![1]!.digest}`), action: { kind: 'corrupt' } });
    const err = await pull({ ...base(), ref: `${proxy.host}/layered:v1` }).catch((e) => e);
    expect(isKind(err, 'Corrupt')).toBe(true);
    expect(err.message).toContain(layered.layers![1]!.digest);
    expect(metadata.listImages()).toEqual([]);
    expect(metadata.listLeases()).toEqual([]);
    expect(await store.has(layered.layers![1]!.digest)).toBe(false);
  });

  it('asks beforeFetch for room before fetching layers; a refusal stops the pull', async () => {
    const asked: number[] = [];
    const err = await pull({
      ...base(),
      ref: `${proxy.host}/layered:v1`,
      beforeFetch: async (n) => {
        asked.push(n);
        throw new Error('disk full');
      },
    }).catch((e) => e);
    expect(err.message).toBe('disk full');
    const all = layered.config!.size + layered.layers!.reduce((n, l) => n + l.size, 0);
    expect(asked).toEqual([all]);
    expect(proxy.requests.filter((q) => q.path.includes('/blobs/'))).toEqual([]);
    await pull({ ...base(), ref: `${proxy.host}/layered:v1`, beforeFetch: async (n) => void asked.push(n) });
    await pull({ ...base(), ref: `${proxy.host}/layered:v1`, beforeFetch: async (n) => void asked.push(n) });
    expect(asked).toEqual([all, all, 0]);
  });

  it('a full disk is a clear ResourceExhausted error and commits nothing', async () => {
    const small = join(tmp, 'small');
    await mkdir(small);
    // A 1 MiB tmpfs (needs root: the suite runs as root and must fail loudly otherwise).
    execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=1m', 'tmpfs', small]);
    try {
      const smallStore = await openContentStore(small);
      const err = await pull({ ...base(), store: smallStore, ref: `${reg.host}/big:v1` }).catch((e) => e);
      expect(isKind(err, 'ResourceExhausted')).toBe(true);
      // Whichever write hit the full disk first (the layer, or the config written meanwhile) is named.
      expect(err.message).toMatch(/disk full writing .*sha256:[a-f0-9]{64}/);
      expect(await smallStore.has(big.layers![0]!.digest)).toBe(false);
      expect(metadata.listImages()).toEqual([]);
    } finally {
      execFileSync('umount', [small]);
    }
  });

  it('an image listing the same layer twice fetches it once', async () => {
    const layer = { files: { 'empty/': { type: 'directory' as const } } };
    const dup = await buildImage({ layers: [layer, { files: { x: '1' } }, layer] });
    expect(dup.layers![0]!.digest).toBe(dup.layers![2]!.digest);
    await pushImage(reg.url, 'dup', 'v1', dup);
    const committed: number[] = [];
    const r = await pull({ ...base(), ref: `${proxy.host}/dup:v1`, onLayerCommitted: (i) => committed.push(i) });
    expect(committed.sort()).toEqual([0, 1, 2]);
    expect(proxy.requests.filter((q) => q.method === 'GET' && q.path.includes(`blobs/${dup.layers![0]!.digest}`))).toHaveLength(1);
    expect(r.record.manifestDigest).toBe(dup.root.digest);
  });

  it('follows an index nested in an index', async () => {
    const outer = buildIndex([multi]); // the inner index's entry has no platform, as usual
    await pushImage(reg.url, 'nested', 'v1', outer);
    const r = await pull({ ...base(), ref: `${reg.host}/nested:v1`, platform: 'linux/arm64' });
    expect(r.record.target.digest).toBe(outer.root.digest);
    expect(r.record.manifestDigest).toBe(arm.root.digest);
  });

  it('an already aborted signal stops the pull at once', async () => {
    const ac = new AbortController();
    ac.abort(new Error('stop'));
    const err = await pull({ ...base(), ref: `${proxy.host}/layered:v1`, signal: ac.signal }).catch((e) => e);
    expect(isKind(err, 'Aborted')).toBe(true);
    expect(proxy.requests).toEqual([]);
    expect(metadata.listLeases()).toEqual([]);
  });

  it('rejects bad references before any network traffic', async () => {
    const err = await pull({ ...base(), ref: 'Bad/Ref' }).catch((e) => e);
    expect(isKind(err, 'InvalidArgument')).toBe(true);
    expect(err.message).toContain('"Bad/Ref"');
    expect(metadata.listLeases()).toEqual([]);
  });
});
