/**
 * The networks as `berth network ls` and `/metrics` show them: every network the applied manifests
 * declare, with or without containers, and every network a container is on (the default `berth`,
 * or one whose document is gone while a container still uses it), from the containers' records.
 */
import type { NetworkDoc } from '../manifest/types.ts';
import { listAttachments } from './attachments.ts';
import { netavarkName, netavarkNetwork } from './netavark.ts';

export interface NetworkListing {
  name: string;
  subnet: string;
  /** The host's bridge for it (netavark makes it with the first container, removes it with the last). */
  bridge: string;
  internal: boolean;
  /** Declared by the applied manifests (the default `berth` network need not be). */
  declared: boolean;
  /** The containers on it, by name. */
  containers: string[];
  /** Host ports its containers publish (a port range counts as its number of ports). */
  publishedPorts: number;
}

export async function listNetworks(root: string, declared: readonly NetworkDoc[] = []): Promise<NetworkListing[]> {
  const byName = new Map<string, NetworkListing>();
  for (const doc of declared) {
    const net = netavarkNetwork(root, doc.metadata.name, doc.spec);
    byName.set(doc.metadata.name, {
      name: doc.metadata.name,
      subnet: doc.spec.subnet,
      bridge: net.network_interface,
      internal: doc.spec.internal,
      declared: true,
      containers: [],
      publishedPorts: 0,
    });
  }
  for (const a of await listAttachments(root)) {
    for (const name of Object.keys(a.addresses)) {
      let n = byName.get(name);
      if (!n) {
        const info = a.netavark.network_info[netavarkName(root, name)];
        if (!info) continue;
        n = {
          name,
          subnet: info.subnets[0]?.subnet ?? '',
          bridge: info.network_interface,
          internal: info.internal,
          declared: false,
          containers: [],
          publishedPorts: 0,
        };
        byName.set(name, n);
      }
      n.containers.push(a.container);
      n.publishedPorts += a.ports.reduce((sum, p) => sum + p.range, 0);
    }
  }
  return [...byName.values()].sort((a, b) => a.name.localeCompare(b.name));
}
