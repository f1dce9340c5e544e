/**
 * netavark, driven the way Podman drives it: a JSON description of the container's networks and
 * published ports on stdin, `setup NETNS` or `teardown NETNS`. netavark makes the bridge, the veth
 * pair, the addresses, the firewall rules (NAT, port forwarding) and starts aardvark-dns, which
 * answers the container names and aliases on each network's gateway address. berth allocates the
 * addresses (netavark takes them as static_ips, as from Podman's IPAM).
 */
import { createHash } from 'node:crypto';
import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdir } from 'node:fs/promises';
import { BerthError } from '../errors.ts';
import type { NetworkSpec, PortSpec } from '../manifest/types.ts';
import { netavarkConfigDir } from './paths.ts';
import { parseSubnet } from './subnet.ts';

/** Where Debian's packages install them (Podman's helper directory). */
const NETAVARK = ['/usr/lib/podman/netavark', '/usr/libexec/podman/netavark'];
const AARDVARK = ['/usr/lib/podman/aardvark-dns', '/usr/libexec/podman/aardvark-dns'];

/** netavark's input (its `NetworkOptions`), with the fields berth sets. */
export interface NetavarkOptions {
  container_id: string;
  container_name: string;
  port_mappings: { host_ip: string; container_port: number; host_port: number; range: number; protocol: string }[] | null;
  networks: Record<string, { static_ips: string[]; aliases: string[]; interface_name: string }>;
  network_info: Record<string, NetavarkNetwork>;
}

interface NetavarkNetwork {
  name: string;
  id: string;
  driver: 'bridge';
  network_interface: string;
  subnets: { subnet: string; gateway: string }[];
  ipv6_enabled: false;
  internal: boolean;
  dns_enabled: true;
  ipam_options: { driver: 'host-local' };
}

const networkId = (root: string, name: string) => createHash('sha256').update(`${root}\0${name}`).digest('hex');

/**
 * The name netavark knows berth's network `name` by, which is also its bridge's (IFNAMSIZ: at most
 * 15 characters). Derived from berth's root too: netavark names its firewall chains after the
 * network's name, so two berth roots on one host (tests, a second instance) must not share one.
 */
export function netavarkName(root: string, name: string): string {
  return `berth-${networkId(root, name).slice(0, 8)}`;
}

/** A network's netavark description. */
export function netavarkNetwork(root: string, name: string, spec: NetworkSpec): NetavarkNetwork {
  const subnet = parseSubnet(spec.subnet);
  return {
    name: netavarkName(root, name),
    id: networkId(root, name),
    driver: 'bridge',
    network_interface: netavarkName(root, name),
    subnets: [{ subnet: subnet.cidr, gateway: subnet.gateway }],
    ipv6_enabled: false,
    internal: spec.internal,
    dns_enabled: true,
    ipam_options: { driver: 'host-local' },
  };
}

export function netavarkPortMappings(ports: PortSpec[] | undefined): NetavarkOptions['port_mappings'] {
  if (!ports?.length) return null;
  return ports.map((p) => ({ host_ip: p.hostIp ?? '', container_port: p.containerPort, host_port: p.hostPort, range: p.range, protocol: p.protocol }));
}

function firstExisting(paths: string[], what: string): string {
  const found = paths.find((p) => existsSync(p));
  if (!found) throw new BerthError('FailedPrecondition', `${what} is not installed (looked in ${paths.join(', ')}): apt-get install netavark aardvark-dns`);
  return found;
}

/** Run `netavark setup|teardown NETNS` with `options` on stdin; its JSON answer (setup) or ''. */
export async function runNetavark(root: string, command: 'setup' | 'teardown', netns: string, options: NetavarkOptions, signal?: AbortSignal): Promise<string> {
  const binary = firstExisting(NETAVARK, 'netavark');
  const config = netavarkConfigDir(root);
  await mkdir(config, { recursive: true, mode: 0o700 });
  const args = ['--config', config, '--aardvark-binary', firstExisting(AARDVARK, 'aardvark-dns'), command, netns];
  return await new Promise<string>((resolve, reject) => {
    const child = execFile(binary, args, { signal, maxBuffer: 1 << 20 }, (err, stdout, stderr) => {
      if (!err) return resolve(stdout);
      // netavark reports {"error": "..."} on stdout; stderr has its log lines.
      let message = String(stderr).trim();
      try {
        message = JSON.parse(stdout).error ?? message;
      } catch {}
      reject(new BerthError('Unavailable', `netavark ${command} for ${options.container_name}: ${message || (err as Error).message}`, { cause: err }));
    });
    child.stdin?.end(JSON.stringify(options));
  });
}
