/**
 * The manifest's network fields (issue 12): the Network kind, a container's networks and ports,
 * the default network, and every problem at its place. Pure: the loader, no network stack.
 */
import { beforeAll, describe, expect, it } from 'vitest';
import { parseManifestSources } from '../../src/manifest/load.ts';
import { formatProblem } from '../../src/manifest/problems.ts';
import { createDocumentValidator, type DocumentValidator } from '../../src/manifest/schema.ts';
import { containerSpecHash } from '../../src/manifest/spec-hash.ts';
import { formatPort, parsePort, portsOverlap } from '../../src/network/ports.ts';

let validator: DocumentValidator;
beforeAll(async () => {
  validator = await createDocumentValidator();
});

const header = (kind: string, name: string) => `---\napiVersion: berth.dev/v1alpha1\nkind: ${kind}\nmetadata: {name: ${name}}\nspec:\n`;
const container = (name: string, lines: string[]) => `${header('Container', name)}  image: busybox:1.36\n${lines.map((l) => `  ${l}\n`).join('')}`;
const network = (name: string, subnet: string) => `${header('Network', name)}  subnet: ${subnet}\n`;
const load = (text: string) => parseManifestSources([{ file: 'n.yaml', text }], validator);

describe('networks in manifests', () => {
  it('reads networks with aliases and ports, resolving each network (berth undeclared)', () => {
    const r = load(
      network('front', '10.89.1.0/24') +
        container('db', ['networks: [front, {name: berth, aliases: [database, pg]}]', 'ports: ["127.0.0.1:5432:5432", "9000-9001:90-91/udp"]']),
    );
    expect(r.problems.map(formatProblem)).toEqual([]);
    const c = r.state!.containers[0]!;
    expect(c.spec.network).toBe('none');
    expect(c.spec.networks).toEqual([
      { name: 'front', aliases: [] },
      { name: 'berth', aliases: ['database', 'pg'] },
    ]);
    expect(c.spec.ports).toEqual([
      { hostIp: '127.0.0.1', hostPort: 5432, containerPort: 5432, protocol: 'tcp', range: 1 },
      { hostPort: 9000, containerPort: 90, protocol: 'udp', range: 2 },
    ]);
    expect(c.networkSpecs).toEqual({
      front: { driver: 'bridge', subnet: '10.89.1.0/24', internal: false },
      berth: { driver: 'bridge', subnet: '10.89.0.0/24', internal: false },
    });
    expect(r.state!.networks!.map((n) => n.metadata.name)).toEqual(['front']);
  });

  it('keeps network: host (and the spec hash) for a container without networks or ports; ports alone join berth', () => {
    const plain = load(container('app', [])).state!.containers[0]!;
    expect(plain.spec.network).toBe('host');
    expect(plain.spec.networks).toBeUndefined();
    expect(containerSpecHash(plain, 'sha256:x')).toBe(containerSpecHash(load(container('app', ['network: host'])).state!.containers[0]!, 'sha256:x'));
    const published = load(container('app', ['ports: ["8080:80"]'])).state!.containers[0]!;
    expect(published.spec.networks).toEqual([{ name: 'berth', aliases: [] }]);
    expect(containerSpecHash(published, 'sha256:x')).not.toBe(containerSpecHash(plain, 'sha256:x'));
  });

  it('gives a container a new spec hash when a network it is on changes subnet (it is recreated on the new one)', () => {
    const on = (subnet: string) => load(network('front', subnet) + container('app', ['networks: [front]'])).state!.containers[0]!;
    expect(containerSpecHash(on('10.89.1.0/24'), 'sha256:x')).toBe(containerSpecHash(on('10.89.1.0/24'), 'sha256:x'));
    expect(containerSpecHash(on('10.89.2.0/24'), 'sha256:x')).not.toBe(containerSpecHash(on('10.89.1.0/24'), 'sha256:x'));
  });

  it('reports each problem at its place', () => {
    const r = load(
      network('a', '10.89.1.0/24') +
        network('b', '10.89.1.128/25') +
        network('c', '10.89.2.1/24') +
        container('app', ['network: host', 'networks: [nope]', 'ports: ["80", "70000:80", "8000-8002:80-81"]']),
    );
    expect(r.problems.map(formatProblem)).toEqual([
      "n.yaml:12:11: spec.subnet: 10.89.1.128/25 overlaps network a's 10.89.1.0/24",
      'n.yaml:18:11: spec.subnet: subnet "10.89.2.1/24": 10.89.2.1 is not the network\'s first address (10.89.2.0/24)',
      'n.yaml:25:12: spec.network: host cannot be combined with networks or ports (the container would have no namespace of its own to join them)',
      'n.yaml:27:11: spec.ports[0]: "80" is not a published port: write [hostIp:]hostPort:containerPort[/tcp|udp], e.g. 8080:80 or 127.0.0.1:9000:9000/udp',
      'n.yaml:27:17: spec.ports[1]: "70000:80": ports are 1 to 65535',
      'n.yaml:27:29: spec.ports[2]: "8000-8002:80-81": a host port range and its container port range must be ascending and of the same length',
    ]);
    expect(load(container('app', ['networks: [nope]'])).problems.map(formatProblem)).toEqual([
      'n.yaml:7:14: spec.networks[0]: no Network named "nope" (declare it: kind: Network, metadata.name: nope)',
    ]);
  });
});

describe('published ports', () => {
  it('parse and format in Compose short syntax, and overlap by protocol, address and range', () => {
    expect(formatPort(parsePort('[::1]:53:53/udp', 'p'))).toBe('[::1]:53:53/udp');
    expect(formatPort(parsePort('0.0.0.0:8080:80', 'p'))).toBe('8080:80/tcp');
    const all = parsePort('8000-8009:80-89', 'p');
    expect(portsOverlap(all, parsePort('127.0.0.1:8005:80', 'p'))).toBe(true);
    expect(portsOverlap(all, parsePort('8005:80/udp', 'p'))).toBe(false);
    expect(portsOverlap(parsePort('127.0.0.1:8005:80', 'p'), parsePort('127.0.0.2:8005:80', 'p'))).toBe(false);
  });
});
