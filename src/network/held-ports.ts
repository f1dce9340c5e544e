/**
 * Which desired containers publish a host port that something else holds right now: a host
 * process (by its socket, as `ss` shows it) or another of berth's containers (by its network
 * record). Read by observe() each turn so that the pure plan can hold such a container back,
 * naming the holder, instead of stopping the old version for a create that would fail. A
 * container's own published ports never count against it: netavark forwards them, nothing
 * listens on them.
 */
import type { ContainerDoc, PortSpec } from '../manifest/types.ts';
import { listAttachments } from './attachments.ts';
import { publishedByOther } from './networks.ts';
import { describeHolder, foreignHolder, listPortHolders, type PortHolder, type ProcessOwner } from './port-holder.ts';

export interface HeldPort {
  /** `port 8080 in use by pid 412 nginx`, `port 8080 in use by container web2 (8080:80/tcp)`. */
  reason: string;
  /** The berth container that publishes it, when it is one. */
  container?: string;
}

/**
 * By container name: the first of its published ports that is held, for those that have one.
 * `ownerOf` names the container a holding process belongs to (its own old version does not count).
 */
export async function observeHeldPorts(
  root: string,
  containers: readonly ContainerDoc[],
  opts: { ownerOf?: ProcessOwner; signal?: AbortSignal } = {},
): Promise<Record<string, HeldPort>> {
  const { signal } = opts;
  const publishing = containers.filter((c) => c.spec.ports?.length);
  if (publishing.length === 0) return {};
  const records = await listAttachments(root);
  const sockets = new Map<PortSpec['protocol'], PortHolder[]>();
  const socketsOf = async (protocol: PortSpec['protocol']) => {
    // Without a working ss (iproute2) the plan cannot see host processes' ports: the create's own check then fails.
    if (!sockets.has(protocol)) sockets.set(protocol, await listPortHolders(protocol, signal).catch((err) => (signal?.aborted ? Promise.reject(err) : [])));
    return sockets.get(protocol)!;
  };
  const held: Record<string, HeldPort> = {};
  for (const doc of publishing) {
    const other = publishedByOther(doc, records);
    if (other) {
      held[doc.metadata.name] = other;
      continue;
    }
    for (const p of doc.spec.ports!) {
      const found = await foreignHolder(p, await socketsOf(p.protocol), doc.metadata.name, opts.ownerOf);
      if (found) {
        held[doc.metadata.name] = { reason: describeHolder(found.holder, found.owner), ...(found.owner ? { container: found.owner } : {}) };
        break;
      }
    }
  }
  return held;
}
