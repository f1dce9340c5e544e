/**
 * The manifest's network fields, after the JSON Schema passed: a `Network` document's spec, a
 * container's `networks` and `ports`, and the checks across documents (a network that is not
 * declared, two networks whose subnets overlap). Problems go to `report` at their document path.
 */
import { BerthError } from '../errors.ts';
import {
  DEFAULT_NETWORK,
  DEFAULT_NETWORK_SPEC,
  type ContainerDoc,
  type ContainerSpec,
  type NetworkAttachmentSpec,
  type NetworkDoc,
  type NetworkSpec,
  type PortSpec,
} from '../manifest/types.ts';
import { parsePort } from './ports.ts';
import { parseSubnet, subnetsOverlap } from './subnet.ts';

type Report = (path: (string | number)[], message: string) => void;

/** A `Network` document's spec with defaults; undefined (reported) when the subnet is not valid. */
export function buildNetworkSpec(spec: Record<string, any>, report: Report): NetworkSpec | undefined {
  try {
    return { driver: 'bridge', subnet: parseSubnet(String(spec.subnet)).cidr, internal: spec.internal ?? false };
  } catch (err) {
    if (!(err instanceof BerthError)) throw err;
    report(['spec', 'subnet'], `spec.subnet: ${err.message}`);
    return undefined;
  }
}

/**
 * A container's `networks` and `ports`. A container on a network has a namespace of its own:
 * `network` becomes `none` (berth's meaning: not the host's), which `network: host` contradicts.
 */
export function buildContainerNetworkFields(spec: Record<string, any>, report: Report): Pick<ContainerSpec, 'networks' | 'ports'> & { network?: 'none' } {
  const out: Pick<ContainerSpec, 'networks' | 'ports'> & { network?: 'none' } = {};
  const ports: PortSpec[] = [];
  (spec.ports ?? []).forEach((p: unknown, i: number) => {
    try {
      ports.push(parsePort(String(p), `spec.ports[${i}]`));
    } catch (err) {
      if (!(err instanceof BerthError)) throw err;
      report(['spec', 'ports', i], err.message);
    }
  });
  let networks: NetworkAttachmentSpec[] = (spec.networks ?? []).map((n: string | { name: string; aliases?: string[] }) =>
    typeof n === 'string' ? { name: n, aliases: [] } : { name: n.name, aliases: [...(n.aliases ?? [])] },
  );
  // Published ports need an address to forward to: Compose's default network, as Compose does.
  if (networks.length === 0 && ports.length > 0) networks = [{ name: DEFAULT_NETWORK, aliases: [] }];
  if (networks.length === 0) return out;
  if (spec.network === 'host')
    report(['spec', 'network'], 'spec.network: host cannot be combined with networks or ports (the container would have no namespace of its own to join them)');
  const seen = new Set<string>();
  networks.forEach((n, i) => {
    if (seen.has(n.name)) report(['spec', 'networks', i], `spec.networks[${i}]: ${n.name} is listed twice`);
    seen.add(n.name);
  });
  out.network = 'none';
  out.networks = networks;
  if (ports.length > 0) out.ports = ports;
  return out;
}

/**
 * Across documents: each container's networks resolved to their specs (`berth` is declared
 * implicitly), and no two networks with overlapping subnets.
 */
export function resolveContainerNetworks(
  containers: Iterable<{ doc: ContainerDoc; report: Report }>,
  networks: Iterable<{ doc: NetworkDoc; report: Report }>,
): void {
  const specs = new Map<string, NetworkSpec>([[DEFAULT_NETWORK, DEFAULT_NETWORK_SPEC]]);
  const declared: { doc: NetworkDoc; report: Report }[] = [];
  for (const n of networks) {
    specs.set(n.doc.metadata.name, n.doc.spec);
    for (const other of declared) {
      if (subnetsOverlap(parseSubnet(n.doc.spec.subnet), parseSubnet(other.doc.spec.subnet))) {
        n.report(['spec', 'subnet'], `spec.subnet: ${n.doc.spec.subnet} overlaps network ${other.doc.metadata.name}'s ${other.doc.spec.subnet}`);
      }
    }
    declared.push(n);
  }
  for (const { doc, report } of containers) {
    if (!doc.spec.networks) continue;
    const resolved: Record<string, NetworkSpec> = {};
    doc.spec.networks.forEach((n, i) => {
      const spec = specs.get(n.name);
      if (spec) resolved[n.name] = spec;
      else report(['spec', 'networks', i], `spec.networks[${i}]: no Network named "${n.name}" (declare it: kind: Network, metadata.name: ${n.name})`);
    });
    doc.networkSpecs = resolved;
  }
}
