/**
 * The registry client against a real registry (Debian's docker-registry), with a loopback fault
 * proxy in front for auth, errors and broken streams.
 */
import { afterAll, beforeAll, beforeEach, afterEach, describe, expect, it } from 'vitest';
import { mkdtemp, rm, mkdir, writeFile, readdir } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startRegistry, startFaultProxy, freePort, type RunningRegistry, type FaultProxy } from '../helpers/registry.ts';
import { buildImage, pushImage, type BuiltImage } from '../helpers/images.ts';
import { RegistryClient } from '../../src/remotes/registry.ts';
import { openContentStore, type LocalContentStore } from '../../src/content/local-store.ts';
import { configFromObject, type Config } from '../../src/config/config.ts';
import { silentLogger } from '../../src/log.ts';
import { parseReference } from '../../src/oci/reference.ts';
import { isKind } from '../../src/errors.ts';
import { randomBytes } from 'node:crypto';

let reg: RunningRegistry;
let tmp: string;
let oci: BuiltImage;
let docker: BuiltImage;
let big: BuiltImage;
const BIG = 3 << 20;

beforeAll(async () => {
  reg = await startRegistry();
  oci = await buildImage({ layers: [{ files: { 'etc/a': 'a\n' } }, { files: { 'etc/b': 'b\n' } }] });
  docker = await buildImage({ layers: [{ files: { 'etc/d': 'docker\n' } }], mediaTypes: 'docker' });
  // Incompressible, so the blob is big on the wire and a cut lands mid-blob.
  big = await buildImage({ layers: [{ files: { 'big.bin': randomBytes(BIG) }, compression: 'none' }] });
  await pushImage(reg.url, 'oci', 'v1', oci);
  await pushImage(reg.url, 'docker', 'v1', docker);
  await pushImage(reg.url, 'big', 'v1', big);
});
afterAll(async () => {
  await reg?.stop();
});

let store: LocalContentStore;
beforeEach(async () => {
  tmp = await mkdtemp(join(tmpdir(), 'berth-remotes-'));
  store = await openContentStore(join(tmp, 'root'));
});
afterEach(async () => {
  await rm(tmp, { recursive: true, force: true });
});

function config(extra: Record<string, any> = {}): Config {
  return configFromObject({
    root: join(tmp, 'root'),
    pull: { max_retries: 3, ...(extra.pull ?? {}) },
    registry: { config_path: join(tmp, 'certs.d'), docker_config: join(tmp, 'docker.json'), ...(extra.registry ?? {}) },
  });
}
const client = (c = config()) => new RegistryClient({ config: c, log: silentLogger() });

describe('resolve', () => {
  it('resolves OCI and Docker manifests with HEAD and the right media types', async () => {
    const c = client();
    const r1 = await c.resolve(`${reg.host}/oci:v1`);
    expect(r1.desc).toEqual({ mediaType: 'application/vnd.oci.image.manifest.v1+json', digest: oci.root.digest, size: oci.root.size });
    expect(r1.name).toBe(`${reg.host}/oci:v1`);
    const r2 = await c.resolve(`${reg.host}/docker:v1`);
    expect(r2.desc.mediaType).toBe('application/vnd.docker.distribution.manifest.v2+json');
    expect(r2.desc.digest).toBe(docker.root.digest);
    const r3 = await c.resolve(`${reg.host}/oci@${oci.root.digest}`);
    expect(r3.desc.digest).toBe(oci.root.digest);
    await c.close();
  });

  it('falls back to GET when HEAD is refused, and hashes the manifest', async () => {
    const proxy = await startFaultProxy({ target: reg.url });
    proxy.faults.push({ match: /^HEAD \/v2\/oci\/manifests\//, action: { kind: 'status', status: 405 } });
    const c = client();
    const r = await c.resolve(`${proxy.host}/oci:v1`);
    expect(r.desc.digest).toBe(oci.root.digest);
    expect(r.bytes?.length).toBe(oci.root.size);
    expect(proxy.requests.map((q) => q.method)).toEqual(['HEAD', 'GET']);
    await c.close();
    await proxy.stop();
  });

  it('says what is missing: unknown tag is NotFound naming the reference', async () => {
    const err = await client()
      .resolve(`${reg.host}/oci:nope`)
      .catch((e) => e);
    expect(isKind(err, 'NotFound')).toBe(true);
    expect(err.message).toContain(`${reg.host}/oci:nope`);
  });

  it('refuses Docker schema 1 clearly', async () => {
    const proxy = await startFaultProxy({ target: reg.url });
    proxy.faults.push({
      match: /manifests/,
      action: {
        kind: 'status',
        status: 200,
        headers: { 'content-type': 'application/vnd.docker.distribution.manifest.v1+prettyjws', 'docker-content-digest': oci.root.digest },
      },
    });
    const err = await client()
      .resolve(`${proxy.host}/old:1`)
      .catch((e) => e);
    expect(isKind(err, 'Unimplemented')).toBe(true);
    expect(err.message).toMatch(/schema 1 is not supported/);
    await proxy.stop();
  });

  it('a registry that is down is a clear Unavailable error', async () => {
    const port = await freePort();
    const err = await client(config({ pull: { max_retries: 1 } }))
      .resolve(`127.0.0.1:${port}/x:1`)
      .catch((e) => e);
    expect(isKind(err, 'Unavailable')).toBe(true);
    expect(err.message).toContain(`http://127.0.0.1:${port}`);
    expect(err.message).toMatch(/ECONNREFUSED.*is the registry running/);
  });
});

describe('auth', () => {
  it('gets an anonymous token from the WWW-Authenticate challenge and caches it per scope', async () => {
    const proxy = await startFaultProxy({ target: reg.url, auth: { kind: 'token' } });
    const c = client();
    const ref = parseReference(`${proxy.host}/oci:v1`);
    const r = await c.resolve(ref);
    await c.fetchBlob(ref, oci.layers![0]!, store);
    await c.fetchBlob(ref, oci.layers![1]!, store);
    expect(r.desc.digest).toBe(oci.root.digest);
    expect(proxy.tokenRequests).toHaveLength(1);
    expect(proxy.tokenRequests[0]).toMatchObject({ method: 'GET', scope: 'repository:oci:pull' });
    expect(proxy.requests.filter((q) => q.status === 401)).toHaveLength(1);
    await c.close();
    await proxy.stop();
  });

  it('uses credentials from the berth config (OAuth POST) and never sends them to the registry', async () => {
    const proxy = await startFaultProxy({ target: reg.url, auth: { kind: 'token', username: 'edge', password: 's3cret' } });
    const c = client(config({ registry: { hosts: { [proxy.host]: { username: 'edge', password: 's3cret' } } } }));
    await c.resolve(`${proxy.host}/oci:v1`);
    expect(proxy.tokenRequests[0]).toMatchObject({ method: 'POST', user: 'edge' });
    expect(proxy.requests.every((q) => !q.authorization || q.authorization.startsWith('Bearer '))).toBe(true);
    await proxy.stop();
  });

  it('uses credentials from a Docker config.json, and wrong ones fail clearly', async () => {
    const proxy = await startFaultProxy({ target: reg.url, auth: { kind: 'token', username: 'edge', password: 'pw' } });
    await writeFile(join(tmp, 'docker.json'), JSON.stringify({ auths: { [proxy.host]: { auth: Buffer.from('edge:pw').toString('base64') } } }));
    await client().resolve(`${proxy.host}/oci:v1`);
    expect(proxy.tokenRequests.at(-1)?.user).toBe('edge');
    await writeFile(join(tmp, 'docker.json'), JSON.stringify({ auths: { [proxy.host]: { auth: Buffer.from('edge:wrong').toString('base64') } } }));
    const err = await client()
      .resolve(`${proxy.host}/oci:v1`)
      .catch((e) => e);
    expect(isKind(err, 'FailedPrecondition')).toBe(true);
    expect(err.message).toMatch(/refused the configured credentials/);
    expect(err.message).not.toContain('wrong');
    await proxy.stop();
  });

  it('uses an identity token (refresh token) from a Docker config.json', async () => {
    const proxy = await startFaultProxy({ target: reg.url, auth: { kind: 'token', username: 'edge', password: 'refresh-me' } });
    await writeFile(
      join(tmp, 'docker.json'),
      JSON.stringify({ auths: { [proxy.host]: { auth: Buffer.from('edge:').toString('base64'), identitytoken: 'refresh-me' } } }),
    );
    await client().resolve(`${proxy.host}/oci:v1`);
    expect(proxy.tokenRequests.at(-1)).toMatchObject({ method: 'POST', user: 'refresh:edge' });
    await proxy.stop();
  });

  it('does basic auth', async () => {
    const proxy = await startFaultProxy({ target: reg.url, auth: { kind: 'basic', username: 'u', password: 'p' } });
    const c = client(config({ registry: { hosts: { [proxy.host]: { username: 'u', password: 'p' } } } }));
    const ref = parseReference(`${proxy.host}/oci:v1`);
    await c.resolve(ref);
    await c.fetchBlob(ref, oci.layers![0]!, store);
    expect(proxy.requests.at(-1)).toMatchObject({ status: 200 });
    expect(proxy.requests.filter((q) => q.status === 401)).toHaveLength(1);
    const denied = await client()
      .resolve(`${proxy.host}/oci:v1`)
      .catch((e) => e);
    expect(isKind(denied, 'FailedPrecondition')).toBe(true);
    expect(denied.message).toMatch(/access denied/);
    await proxy.stop();
  });
});

describe('fetching blobs', () => {
  const layer = () => big.layers![0]!;
  const ref = (p: FaultProxy) => parseReference(`${p.host}/big:v1`);

  it('a corrupt blob is never committed', async () => {
    const proxy = await startFaultProxy({ target: reg.url });
    proxy.faults.push({ match: /blobs/, action: { kind: 'corrupt' } });
    const err = await client()
      .fetchBlob(ref(proxy), layer(), store)
      .catch((e) => e);
    expect(isKind(err, 'Corrupt')).toBe(true);
    expect(err.message).toContain(layer().digest);
    expect(err.message).toMatch(/expected sha256:[a-f0-9]{64}, found sha256:[a-f0-9]{64}/);
    expect(await readdir(store.blobsDir)).toEqual([]);
    expect(await readdir(store.ingestDir)).toEqual([]);
    await proxy.stop();
  });

  it('a blob corrupted once is downloaded again and committed', async () => {
    const proxy = await startFaultProxy({ target: reg.url });
    proxy.faults.push({ match: /blobs/, action: { kind: 'corrupt' }, times: 1 });
    await client().fetchBlob(ref(proxy), layer(), store);
    expect(await store.has(layer().digest)).toBe(true);
    await proxy.stop();
  });

  it('garbage left in an ingest (a power cut) never needs a manual wipe: verified, discarded, fetched afresh', async () => {
    const proxy = await startFaultProxy({ target: reg.url });
    const w = await store.writer({ ref: `layer-${layer().digest}`, expected: layer().digest, total: layer().size });
    await w.write(Buffer.alloc(1 << 20, 0)); // zeros where data should be, as after a lost page cache
    await w.close();
    const r = await client().fetchBlob(ref(proxy), layer(), store);
    const gets = proxy.requests.filter((q) => q.method === 'GET');
    expect(gets[0]!.range).toBe(`bytes=${1 << 20}-`); // it resumed first…
    expect(gets.at(-1)!.range).toBeUndefined(); // …then, the digest being wrong, started over
    expect(r.resumedFrom).toBe(0);
    expect(await store.has(layer().digest)).toBe(true);
    expect(await readdir(store.ingestDir)).toEqual([]);
    await proxy.stop();
  });

  it('a connection cut mid-blob resumes with Range, without starting over', async () => {
    const proxy = await startFaultProxy({ target: reg.url });
    proxy.faults.push({ match: /^GET .*blobs/, action: { kind: 'cut', afterBytes: 1_000_000 }, times: 1 });
    const r = await client().fetchBlob(ref(proxy), layer(), store);
    const gets = proxy.requests.filter((q) => q.method === 'GET');
    expect(gets).toHaveLength(2);
    const offset = Number(/^bytes=(\d+)-$/.exec(gets[1]!.range ?? '')?.[1]);
    expect(offset).toBeGreaterThan(0);
    expect(offset).toBeLessThanOrEqual(1_000_000);
    expect(gets[1]!.status).toBe(206);
    expect(r.transferred).toBe(layer().size); // every byte once
    expect(await store.has(layer().digest)).toBe(true);
    await proxy.stop();
  });

  it('starts over when the registry ignores Range, and still verifies', async () => {
    const proxy = await startFaultProxy({ target: reg.url });
    proxy.faults.push({ match: /^GET .*blobs/, action: { kind: 'cut', afterBytes: 500_000 }, times: 1 });
    proxy.faults.push({ match: /^GET .*blobs/, action: { kind: 'ignoreRange' } });
    const r = await client().fetchBlob(ref(proxy), layer(), store);
    expect(proxy.requests.filter((q) => q.method === 'GET')[1]!.status).toBe(200);
    expect(r.transferred).toBeGreaterThan(layer().size);
    expect(await store.has(layer().digest)).toBe(true);
    await proxy.stop();
  });

  it('retries 500s and honours Retry-After on 429', async () => {
    const proxy = await startFaultProxy({ target: reg.url });
    proxy.faults.push({ match: /^GET .*blobs/, action: { kind: 'status', status: 500 }, times: 2 });
    proxy.faults.push({ match: /^GET .*blobs/, action: { kind: 'status', status: 429, headers: { 'retry-after': '1' } }, times: 1 });
    const t0 = Date.now();
    await client().fetchBlob(ref(proxy), layer(), store);
    expect(Date.now() - t0).toBeGreaterThanOrEqual(950);
    expect(proxy.requests.map((q) => q.status)).toEqual([500, 500, 429, 200]);
    expect(await store.has(layer().digest)).toBe(true);
    await proxy.stop();
  });

  it('gives up after max_retries with an error that says why', async () => {
    const proxy = await startFaultProxy({ target: reg.url });
    proxy.faults.push({ match: /^GET .*blobs/, action: { kind: 'status', status: 503 } });
    const err = await client(config({ pull: { max_retries: 1 } }))
      .fetchBlob(ref(proxy), layer(), store)
      .catch((e) => e);
    expect(isKind(err, 'Unavailable')).toBe(true);
    expect(err.message).toMatch(/HTTP 503 \(2 failed attempts\); giving up after [\d.]+s without progress/);
    await proxy.stop();
  });
});

describe('hosts', () => {
  it('tries a hosts.toml mirror first with ?ns=, and falls back to the server when it fails', async () => {
    const mirror = await startFaultProxy({ target: reg.url });
    const upstreamPort = await freePort();
    const upstream = `127.0.0.1:${upstreamPort}`; // the reference's registry: never reached
    await mkdir(join(tmp, 'certs.d', upstream), { recursive: true });
    await writeFile(
      join(tmp, 'certs.d', upstream, 'hosts.toml'),
      `server = "${reg.url}"\n\n[host."${mirror.url}"]\n  capabilities = ["pull", "resolve"]\n  [host."${mirror.url}".header]\n    x-edge = "berth"\n`,
    );
    const c = client();
    const r = await c.resolve(`${upstream}/oci:v1`);
    expect(r.desc.digest).toBe(oci.root.digest);
    expect(mirror.requests[0]!.path).toBe(`/v2/oci/manifests/v1?ns=${encodeURIComponent(upstream)}`);
    // The mirror breaks: the server from hosts.toml serves.
    mirror.faults.push({ match: /blobs/, action: { kind: 'status', status: 404 } });
    await c.fetchBlob(parseReference(`${upstream}/oci:v1`), oci.layers![0]!, store);
    expect(await store.has(oci.layers![0]!.digest)).toBe(true);
    await c.close();
    await mirror.stop();
  });

  it('a mirror that is down is given up quickly for the registry itself', async () => {
    const dead = `http://127.0.0.1:${await freePort()}`;
    const c = client(config({ pull: { max_retries: 5 }, registry: { hosts: { [reg.host]: { mirrors: [dead] } } } }));
    const t0 = Date.now();
    const r = await c.resolve(`${reg.host}/oci:v1`);
    expect(r.desc.digest).toBe(oci.root.digest);
    expect(Date.now() - t0).toBeLessThan(3000); // vs ~6 s of backoff were the mirror retried 5 times
    await c.close();
  });

  it('uses mirrors and headers from the berth config', async () => {
    const mirror = await startFaultProxy({ target: reg.url });
    const c = client(config({ registry: { hosts: { [reg.host]: { mirrors: [mirror.url], headers: { 'X-Edge': 'yes' } } } } }));
    await c.resolve(`${reg.host}/oci:v1`);
    expect(mirror.requests[0]!.path).toContain(`ns=${encodeURIComponent(reg.host)}`);
    await mirror.stop();
  });
});
