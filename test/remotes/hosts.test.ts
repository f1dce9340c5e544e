/** Endpoint lists from containerd hosts.toml files and the berth config. */
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { registryEndpoints, endpointUrl } from '../../src/remotes/hosts.ts';
import { configFromObject } from '../../src/config/config.ts';
import { isKind } from '../../src/errors.ts';

let dir: string;
beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'berth-hosts-'));
});
afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

const cfg = (hosts: Record<string, unknown> = {}) => configFromObject({ root: dir, registry: { config_path: dir, docker_config: join(dir, 'none'), hosts } });
const hostsToml = async (name: string, text: string) => {
  await mkdir(join(dir, name), { recursive: true });
  await writeFile(join(dir, name, 'hosts.toml'), text);
};

describe('registry endpoints', () => {
  it('defaults: HTTPS, docker.io served by registry-1, loopback over plain HTTP', async () => {
    expect((await registryEndpoints('ghcr.io', cfg())).map((e) => `${e.origin}${e.path}`)).toEqual(['https://ghcr.io/v2']);
    expect((await registryEndpoints('docker.io', cfg()))[0]!.origin).toBe('https://registry-1.docker.io');
    for (const h of ['127.0.0.1:5000', 'localhost:5000', '[::1]:5000']) expect((await registryEndpoints(h, cfg()))[0]!.origin).toBe(`http://${h}`);
    expect((await registryEndpoints('127.0.0.1:5000', cfg({ '127.0.0.1:5000': { plain_http: false } })))[0]!.origin).toBe('https://127.0.0.1:5000');
    expect((await registryEndpoints('edge.lan:5000', cfg({ 'edge.lan:5000': { plain_http: true } })))[0]!.origin).toBe('http://edge.lan:5000');
  });

  it('reads hosts.toml as containerd does: hosts in order, then the server; capabilities, ca, client, header, override_path', async () => {
    await hostsToml(
      'docker.io',
      `server = "https://registry-1.docker.io"
[host."https://mirror.lan"]
  capabilities = ["pull", "resolve"]
  ca = "mirror-ca.pem"
  client = [["client.crt", "client.key"]]
  skip_verify = true
  [host."https://mirror.lan".header]
    x-token = ["a", "b"]
[host."https://cache.lan/v2/dockerhub"]
  capabilities = ["pull"]
  override_path = true
`,
    );
    const eps = await registryEndpoints('docker.io', cfg());
    expect(eps.map((e) => `${e.origin}${e.path} ${[...e.capabilities].join(',')} mirror=${e.mirror}`)).toEqual([
      'https://mirror.lan/v2 pull,resolve mirror=true',
      'https://cache.lan/v2/dockerhub pull mirror=true',
      'https://registry-1.docker.io/v2 pull,resolve,push mirror=false',
    ]);
    expect(eps[0]).toMatchObject({
      skipVerify: true,
      ca: [join(dir, 'docker.io', 'mirror-ca.pem')],
      client: [{ cert: join(dir, 'docker.io', 'client.crt'), key: join(dir, 'docker.io', 'client.key') }],
      headers: { 'x-token': 'a, b' },
    });
    expect(endpointUrl(eps[0]!, 'library/alpine', 'manifests/3')).toBe('https://mirror.lan/v2/library/alpine/manifests/3?ns=docker.io');
    expect(endpointUrl(eps[1]!, 'library/alpine', 'blobs/x')).toBe('https://cache.lan/v2/dockerhub/library/alpine/blobs/x?ns=docker.io');
    expect(endpointUrl(eps[2]!, 'library/alpine', 'blobs/x')).toBe('https://registry-1.docker.io/v2/library/alpine/blobs/x');
  });

  it('falls back to _default/hosts.toml; config mirrors come first', async () => {
    await hostsToml('_default', `[host."http://10.0.0.2:5000"]\n  capabilities = ["pull", "resolve"]\n`);
    const eps = await registryEndpoints('quay.io', cfg({ 'quay.io': { mirrors: ['http://127.0.0.1:6000'] } }));
    expect(eps.map((e) => e.origin)).toEqual(['http://127.0.0.1:6000', 'http://10.0.0.2:5000', 'https://quay.io']);
  });

  it('says where a hosts.toml is wrong', async () => {
    await hostsToml('bad.io', `server = "https://bad.io"\n[host."https://m"]\n  capabilities = ["pull", "fly"]\n`);
    const err = await registryEndpoints('bad.io', cfg()).catch((e) => e);
    expect(isKind(err, 'InvalidArgument')).toBe(true);
    expect(err.message).toContain(join(dir, 'bad.io', 'hosts.toml'));
    expect(err.message).toContain('unknown capability "fly"');
    await hostsToml('worse.io', `server = "https://worse.io\n`);
    const e2 = await registryEndpoints('worse.io', cfg()).catch((e) => e);
    expect(e2.message).toMatch(/worse\.io\/hosts\.toml:1:\d+: invalid TOML/);
  });
});
