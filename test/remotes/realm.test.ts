/**
 * What a registry's answers may make berth send, and to whom (issue 8 item 3): the password goes
 * to a token realm only over HTTPS, on the registry's own host, or to a realm host the config
 * allows; token requests use the host's TLS settings and read bounded bodies; a
 * Docker-Content-Digest must be a digest before it is used; configured headers stay with the host
 * they are configured for. A real docker-registry behind loopback gates and token servers.
 */
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { makeTlsCert, startFaultProxy, startRegistry, type RunningRegistry } from '../helpers/registry.ts';
import { startGateProxy, type GateAnswer, type GateProxy } from '../helpers/fault-proxy-gate.ts';
import { bearerGate, startTokenRealm, type TokenRealm } from '../helpers/token-realm.ts';
import { buildImage, pushImage, type BuiltImage } from '../helpers/images.ts';
import { RegistryClient } from '../../src/remotes/registry.ts';
import { openContentStore } from '../../src/content/local-store.ts';
import { configFromObject } from '../../src/config/config.ts';
import { silentLogger } from '../../src/log.ts';
import { parseReference } from '../../src/oci/reference.ts';
import { isKind } from '../../src/errors.ts';

let reg: RunningRegistry;
let img: BuiltImage;
let tmp: string;
let tls: { certFile: string; keyFile: string };

beforeAll(async () => {
  reg = await startRegistry();
  img = await buildImage({ layers: [{ files: { 'etc/realm': 'r\n' } }] });
  await pushImage(reg.url, 'oci', 'v1', img);
});
afterAll(async () => {
  await reg?.stop();
});

// Servers a test starts, stopped after it whatever happens.
const started: Array<{ stop(): Promise<void> }> = [];
async function track<T extends { stop(): Promise<void> }>(p: Promise<T>): Promise<T> {
  const s = await p;
  started.push(s);
  return s;
}
beforeEach(async () => {
  tmp = await mkdtemp(join(tmpdir(), 'berth-realm-'));
  tls ??= await makeTlsCert(await mkdtemp(join(tmpdir(), 'berth-realm-tls-')));
});
afterEach(async () => {
  for (const s of started.splice(0)) await s.stop();
  await rm(tmp, { recursive: true, force: true });
});

function client(hosts: Record<string, unknown>) {
  const config = configFromObject({
    root: tmp,
    pull: { max_retries: 0 },
    registry: { config_path: join(tmp, 'certs.d'), docker_config: join(tmp, 'none.json'), hosts },
  });
  const c = new RegistryClient({ config, log: silentLogger() });
  started.push({ stop: () => c.close() });
  return c;
}

/** A plain-HTTP registry (gate on its own loopback port) whose 401 names `realm`. */
const gateFor = (realm: TokenRealm) => track(startGateProxy({ target: reg.url, gate: bearerGate(realm) }));
const sawPassword = (realm: TokenRealm) => realm.requests.some((r) => r.authorization !== undefined || r.form.has('password'));

describe('credentials and the token realm', () => {
  it('a plain-HTTP realm on another host:port never gets the password; the token is asked for anonymously', async () => {
    const realm = await track(startTokenRealm({ username: 'edge', password: 's3cret' }));
    const gate = await gateFor(realm);
    const r = await client({ [gate.host]: { username: 'edge', password: 's3cret' } }).resolve(`${gate.host}/oci:v1`);
    expect(r.desc.digest).toBe(img.root.digest);
    expect(realm.requests.length).toBeGreaterThan(0);
    expect(realm.requests.map((q) => q.method)).toEqual(realm.requests.map(() => 'GET'));
    expect(sawPassword(realm)).toBe(false);
  });

  it('a private image behind such a realm fails naming the realm and the rule, still without sending the password', async () => {
    const realm = await track(startTokenRealm({ username: 'edge', password: 's3cret', allowAnonymous: false }));
    const gate = await gateFor(realm);
    const err = await client({ [gate.host]: { username: 'edge', password: 's3cret' } })
      .resolve(`${gate.host}/oci:v1`)
      .catch((e) => e);
    expect(isKind(err, 'FailedPrecondition')).toBe(true);
    expect(err.message).toContain(new URL(realm.realm).origin);
    expect(err.message).toContain(`registry.hosts."${gate.host}".auth_realms`);
    expect(err.message).not.toContain('s3cret');
    expect(sawPassword(realm)).toBe(false);
  });

  it("a plain-HTTP realm on the registry's own host gets it", async () => {
    const proxy = await track(startFaultProxy({ target: reg.url, auth: { kind: 'token', username: 'edge', password: 's3cret' } }));
    await client({ [proxy.host]: { username: 'edge', password: 's3cret' } }).resolve(`${proxy.host}/oci:v1`);
    expect(proxy.tokenRequests[0]).toMatchObject({ method: 'POST', user: 'edge' });
  });

  it('a realm host listed in auth_realms gets it', async () => {
    const realm = await track(startTokenRealm({ username: 'edge', password: 's3cret', allowAnonymous: false }));
    const gate = await gateFor(realm);
    const realmHost = new URL(realm.realm).host;
    const r = await client({ [gate.host]: { username: 'edge', password: 's3cret', auth_realms: [realmHost] } }).resolve(`${gate.host}/oci:v1`);
    expect(r.desc.digest).toBe(img.root.digest);
    expect(realm.requests[0]).toMatchObject({ method: 'POST' });
    expect(realm.requests[0]!.form.get('password')).toBe('s3cret');
  });

  it("an HTTPS realm on another host gets it, over the registry host's TLS settings (ca, skip_verify)", async () => {
    const realm = await track(startTokenRealm({ username: 'edge', password: 's3cret', allowAnonymous: false, tls }));
    const gate = await gateFor(realm);
    const creds = { username: 'edge', password: 's3cret' };
    const r = await client({ [gate.host]: { ...creds, ca: tls.certFile } }).resolve(`${gate.host}/oci:v1`);
    expect(r.desc.digest).toBe(img.root.digest);
    expect(realm.requests.at(-1)!.form.get('password')).toBe('s3cret');
    const r2 = await client({ [gate.host]: { ...creds, skip_verify: true } }).resolve(`${gate.host}/oci:v1`);
    expect(r2.desc.digest).toBe(img.root.digest);
    // Without them the self-signed realm is refused, naming it.
    const err = await client({ [gate.host]: creds })
      .resolve(`${gate.host}/oci:v1`)
      .catch((e) => e);
    expect(isKind(err, 'Unavailable')).toBe(true);
    expect(err.message).toContain(new URL(realm.realm).origin);
  });

  it('a realm that answers more than 1 MiB is refused with ResourceExhausted naming it', async () => {
    const realm = await track(startTokenRealm({ padding: 2 << 20 }));
    const gate = await gateFor(realm);
    const err = await client({})
      .resolve(`${gate.host}/oci:v1`)
      .catch((e) => e);
    expect(isKind(err, 'ResourceExhausted')).toBe(true);
    expect(err.message).toContain(new URL(realm.realm).origin);
  });

  it('a token is only ever asked for pulling, whatever scope the challenge names', async () => {
    const realm = await track(startTokenRealm({ username: 'edge', password: 's3cret' }));
    const gate = await track(startGateProxy({ target: reg.url, gate: bearerGate(realm, 'repository:oci:pull,push repository:other:pull registry:catalog:*') }));
    await client({ [gate.host]: { username: 'edge', password: 's3cret' } }).resolve(`${gate.host}/oci:v1`);
    const asked = realm.requests.flatMap((q) => q.form.getAll('scope').flatMap((s) => s.split(' ')));
    expect(asked.length).toBeGreaterThan(0);
    expect(asked.every((s) => /^repository:[^:]+:pull$/.test(s))).toBe(true);
  });

  it('a token that cannot be a header value is refused naming the realm', async () => {
    const realm = await track(startTokenRealm({ token: 'abc def\u0001' }));
    const gate = await gateFor(realm);
    const err = await client({})
      .resolve(`${gate.host}/oci:v1`)
      .catch((e) => e);
    expect(isKind(err, 'Corrupt')).toBe(true);
    expect(err.message).toContain(new URL(realm.realm).origin);
  });

  it('auth_realms is validated like every key', () => {
    const bad = (v: unknown) => (() => configFromObject({ registry: { hosts: { 'r.lan': { auth_realms: v } } } })) as () => void;
    expect(bad('auth.lan')).toThrow(/"registry\.hosts\.r\.lan\.auth_realms"/);
    expect(bad(['http://auth.lan/token'])).toThrow(/"registry\.hosts\.r\.lan\.auth_realms\.0"/);
    expect(configFromObject({ registry: { hosts: { 'r.lan': { auth_realms: ['auth.lan:5001'] } } } }).registry.hosts['r.lan']!.authRealms).toEqual([
      'auth.lan:5001',
    ]);
  });
});

describe('Docker-Content-Digest', () => {
  it('a malformed digest is refused before it goes into a URL', async () => {
    const proxy = await track(startFaultProxy({ target: reg.url }));
    const bad = 'sha256:../../../../v2/other/blobs/x';
    proxy.faults.push({
      match: /^HEAD .*manifests/,
      action: {
        kind: 'status',
        status: 200,
        headers: { 'content-type': 'application/vnd.oci.image.manifest.v1+json', 'content-length': '500', 'docker-content-digest': bad },
      },
    });
    const c = client({});
    const err = await c.resolve(`${proxy.host}/oci:v1`).catch((e) => e);
    expect(isKind(err, 'Corrupt')).toBe(true);
    expect(err.message).toContain('Docker-Content-Digest');
    expect(proxy.requests.map((q) => q.path)).toEqual(['/v2/oci/manifests/v1']);
  });
});

describe('configured headers stay with their host', () => {
  it('a mirror gets its own headers, not the registry’s', async () => {
    const mirror = await track(startGateProxy({ target: reg.url }));
    const c = client({ [reg.host]: { mirrors: [mirror.url], headers: { 'X-Device-Secret': 'kiosk-7' } }, [mirror.host]: { headers: { 'X-Mirror-Key': 'm' } } });
    const r = await c.resolve(`${reg.host}/oci:v1`);
    expect(r.desc.digest).toBe(img.root.digest);
    expect(mirror.requests.length).toBeGreaterThan(0);
    expect(mirror.requests.every((q) => q.headers['x-device-secret'] === undefined && q.headers['x-mirror-key'] === 'm')).toBe(true);
  });

  it('a redirect to another origin gets neither the headers nor the Authorization', async () => {
    const storage: GateProxy = await track(startGateProxy({ target: reg.url }));
    // The registry requires basic auth and sends blobs to "storage" on another port.
    const front = await track(
      startGateProxy({
        target: reg.url,
        gate: (q): GateAnswer | undefined => {
          if (!q.headers.authorization) return { status: 401, headers: { 'www-authenticate': 'Basic realm="berth-test"' } };
          if (q.method === 'GET' && q.path.includes('/blobs/')) return { status: 307, headers: { location: `${storage.url}${q.path}` } };
          return undefined;
        },
      }),
    );
    const c = client({ [front.host]: { username: 'u', password: 'p', headers: { 'X-Device-Secret': 'kiosk-7' } } });
    const ref = parseReference(`${front.host}/oci:v1`);
    const store = await openContentStore(join(tmp, 'root'));
    await c.fetchBlob(ref, img.layers![0]!, store);
    expect(await store.has(img.layers![0]!.digest)).toBe(true);
    expect(front.requests.at(-1)).toMatchObject({ status: 307 });
    expect(front.requests.at(-1)!.headers['x-device-secret']).toBe('kiosk-7');
    expect(storage.requests).toHaveLength(1);
    expect(storage.requests[0]!.headers['x-device-secret']).toBeUndefined();
    expect(storage.requests[0]!.headers.authorization).toBeUndefined();
  });
});
