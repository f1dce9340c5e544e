/** HTTPS registries: CA bundles and skip_verify from hosts.toml and from the berth config. */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { makeTlsCert, startRegistry, type RunningRegistry } from '../helpers/registry.ts';
import { buildImage, pushImage } from '../helpers/images.ts';
import { RegistryClient } from '../../src/remotes/registry.ts';
import { configFromObject } from '../../src/config/config.ts';
import { silentLogger } from '../../src/log.ts';
import { isKind } from '../../src/errors.ts';
import { Agent } from 'undici';

let tmp: string;
let reg: RunningRegistry;
let cert: { certFile: string; keyFile: string };
let digest: string;
let mtls: RunningRegistry;
let clientCert: { certFile: string; keyFile: string };

beforeAll(async () => {
  tmp = await mkdtemp(join(tmpdir(), 'berth-tls-'));
  cert = await makeTlsCert(tmp);
  reg = await startRegistry({ tls: cert });
  const img = await buildImage({ layers: [{ files: { a: 'tls' } }] });
  digest = img.root.digest;
  // Push over HTTPS trusting the test CA.
  const { setGlobalDispatcher, getGlobalDispatcher } = await import('undici');
  const previous = getGlobalDispatcher();
  setGlobalDispatcher(new Agent({ connect: { ca: await (await import('node:fs/promises')).readFile(cert.certFile, 'utf8') } }));
  try {
    await pushImage(reg.url, 'secure', 'v1', img);
  } finally {
    setGlobalDispatcher(previous);
  }
});
afterAll(async () => {
  await mtls?.stop();
  await reg?.stop();
  await rm(tmp, { recursive: true, force: true });
});

async function resolveWith(hostsToml: string | undefined, hosts: Record<string, unknown> = {}) {
  const certs = await mkdtemp(join(tmp, 'certs-'));
  if (hostsToml !== undefined) {
    await mkdir(join(certs, reg.host), { recursive: true });
    await writeFile(join(certs, reg.host, 'hosts.toml'), hostsToml);
  }
  const config = configFromObject({ root: tmp, pull: { max_retries: 0 }, registry: { config_path: certs, docker_config: join(tmp, 'none.json'), hosts } });
  const client = new RegistryClient({ config, log: silentLogger() });
  try {
    return await client.resolve(`${reg.host}/secure:v1`);
  } finally {
    await client.close();
  }
}

describe('TLS', () => {
  it('trusts a CA named in hosts.toml (relative to its directory)', async () => {
    const r = await resolveWith(`server = "https://${reg.host}"\nca = "${cert.certFile}"\n`);
    expect(r.desc.digest).toBe(digest);
  });

  it('refuses an unknown certificate with a clear error, and skip_verify accepts it', async () => {
    const err = await resolveWith(`server = "https://${reg.host}"\n`).catch((e) => e);
    expect(isKind(err, 'Unavailable')).toBe(true);
    expect(err.message).toContain(`https://${reg.host}`);
    expect(err.message).toMatch(/SELF_SIGNED|certificate/i);
    const r = await resolveWith(`server = "https://${reg.host}"\nskip_verify = true\n`);
    expect(r.desc.digest).toBe(digest);
  });

  it('presents a client certificate from hosts.toml to a registry that requires one (mutual TLS)', async () => {
    clientCert = await makeTlsCert(tmp, 'client-');
    mtls = await startRegistry({ tls: { ...cert, client: clientCert } });
    const certs = await mkdtemp(join(tmp, 'mtls-'));
    const config = () => configFromObject({ root: tmp, pull: { max_retries: 0 }, registry: { config_path: certs, docker_config: join(tmp, 'none.json') } });
    await mkdir(join(certs, mtls.host), { recursive: true });
    const write = (client: string) => writeFile(join(certs, mtls.host, 'hosts.toml'), `server = "https://${mtls.host}"\nca = "${cert.certFile}"\n${client}`);
    await write('');
    const without = new RegistryClient({ config: config(), log: silentLogger() });
    const err = await without.resolve(`${mtls.host}/secure:v1`).catch((e) => e);
    await without.close();
    expect(isKind(err, 'Unavailable')).toBe(true);
    await write(`client = ["${clientCert.certFile}", "${clientCert.keyFile}"]\n`);
    const withCert = new RegistryClient({ config: config(), log: silentLogger() });
    const r = await withCert.resolve(`${mtls.host}/secure:v1`).catch((e) => e);
    await withCert.close();
    // The manifest is not in this registry: reaching it (404 NotFound) proves the handshake worked.
    expect(isKind(r, 'NotFound')).toBe(true);
  });

  it('uses plain_http = false, ca and skip_verify from the berth config', async () => {
    const r = await resolveWith(undefined, { [reg.host]: { plain_http: false, ca: cert.certFile } });
    expect(r.desc.digest).toBe(digest);
    const r2 = await resolveWith(undefined, { [reg.host]: { plain_http: false, skip_verify: true } });
    expect(r2.desc.digest).toBe(digest);
    // A loopback registry is plain HTTP by default: talking HTTP to an HTTPS port fails clearly.
    const err = await resolveWith(undefined).catch((e) => e);
    expect(isKind(err, 'Unavailable')).toBe(true);
    expect(err.message).toContain(`http://${reg.host} answered HTTP 400`);
  });
});
