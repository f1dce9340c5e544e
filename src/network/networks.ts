/**
 * Putting a container on its networks and taking it off, crash-only. Attach: record first (the
 * addresses it takes, the netavark description), then the namespace, then `netavark setup`; a
 * failure tears everything down again, so a container is never half-published. Detach: from the
 * record alone (not the manifests), so whatever a crash or a power cut left behind (a veth, the
 * namespace, firewall rules, addresses) goes away the same way. netavark removes a bridge with
 * its last container.
 *
 * One lock per root (`networks/.lock`) serialises attach and detach: the allocator reads every
 * record, and netavark decides about a bridge from what is attached to it.
 */
import { createHash } from 'node:crypto';
import { acquireLock } from '../content/ref-lock.ts';
import { failedPrecondition, isKind } from '../errors.ts';
import type { ContainerDoc, ContainerSpec } from '../manifest/types.ts';
import { deleteAttachment, listAttachments, readAttachment, writeAttachment, type Attachment } from './attachments.ts';
import { netavarkNetwork, netavarkPortMappings, runNetavark, type NetavarkOptions } from './netavark.ts';
import { createNetns, netnsMounted, removeNetns } from './netns.ts';
import { networksDir, netnsPath } from './paths.ts';
import { describeHolder, foreignHolder, listPortHolders, type ProcessOwner } from './port-holder.ts';
import { conflictingRoute } from './host-routes.ts';
import { formatPort, portsOverlap } from './ports.ts';
import { freeAddress, parseSubnet } from './subnet.ts';

export interface NetworkContext {
  root: string;
  signal?: AbortSignal;
  /** Reports teardown trouble that does not stop the work (logged by the caller). */
  warn?: (message: string) => void;
  /** Names the container a host process belongs to: a port its own old version holds is not in the way. */
  ownerOf?: ProcessOwner;
}

const lockPath = (root: string) => `${networksDir(root)}/.lock`;

async function locked<T>(ctx: NetworkContext, fn: () => Promise<T>): Promise<T> {
  const lock = await acquireLock(lockPath(ctx.root), 'networks', { signal: ctx.signal });
  try {
    return await fn();
  } finally {
    await lock.release();
  }
}

/**
 * FailedPrecondition when `doc` cannot be put on its networks: a subnet the host routes through
 * another device, or a port it publishes taken by another of berth's containers or by a host
 * process (naming it). Checked before the old container is stopped.
 */
export async function checkNetworking(ctx: NetworkContext, doc: ContainerDoc): Promise<void> {
  if (!doc.spec.networks?.length) return;
  for (const n of doc.spec.networks ?? []) {
    const spec = doc.networkSpecs?.[n.name];
    if (!spec) continue;
    const route = await conflictingRoute(parseSubnet(spec.subnet), netavarkNetwork(ctx.root, n.name, spec).network_interface, ctx.signal);
    if (route) throw failedPrecondition(`network ${n.name}: its subnet ${spec.subnet} overlaps the host's route to ${route.dst} via ${route.dev}`);
  }
  const ports = doc.spec.ports ?? [];
  checkPublishedByOthers(doc, await listAttachments(ctx.root));
  // Its previous version's ports are forwarded (on networks: ss never shows them) or listened on
  // by its own processes (on the host's network: not in the way, it stops first).
  for (const p of ports) {
    const found = await foreignHolder(p, await listPortHolders(p.protocol, ctx.signal), doc.metadata.name, ctx.ownerOf);
    if (found) throw failedPrecondition(describeHolder(found.holder, found.owner));
  }
}

/** FailedPrecondition when another container's record publishes a host port `doc` publishes. */
function checkPublishedByOthers(doc: ContainerDoc, records: Attachment[]): void {
  const other = publishedByOther(doc, records);
  if (other) throw failedPrecondition(other.reason);
}

/** Another container whose record publishes a host port `doc` publishes, and what to say about it. */
export function publishedByOther(doc: ContainerDoc, records: Attachment[]): { container: string; reason: string } | undefined {
  const others = records.filter((a) => a.container !== doc.metadata.name);
  for (const p of doc.spec.ports ?? []) {
    const other = others.find((a) => a.ports.some((q) => portsOverlap(p, q)));
    if (other) return { container: other.container, reason: `port ${p.hostPort} in use by container ${other.container} (${formatPort(p)})` };
  }
  return undefined;
}

/** What the runtime needs from an attached container: its name servers (aardvark-dns). */
export interface Attached {
  dns: string[];
  addresses: Record<string, string>;
}

/**
 * Put the container `doc` (which has `networks`) on its networks, in the namespace at
 * `netnsPath(root, name)`. Whatever an earlier attempt left for this name is torn down first.
 */
export async function attachContainer(ctx: NetworkContext, doc: ContainerDoc): Promise<Attached> {
  const name = doc.metadata.name;
  return await locked(ctx, async () => {
    await teardown(ctx, name);
    const records = await listAttachments(ctx.root);
    // Again under the lock: two containers of one turn may both have passed checkNetworking.
    checkPublishedByOthers(doc, records);
    const taken = new Set(records.flatMap((a) => Object.values(a.addresses)));
    const addresses: Record<string, string> = {};
    const aliases: Record<string, string[]> = {};
    const options: NetavarkOptions = {
      container_id: createHash('sha256').update(`${ctx.root}\0${name}`).digest('hex'),
      container_name: name,
      port_mappings: netavarkPortMappings(doc.spec.ports),
      networks: {},
      network_info: {},
    };
    (doc.spec.networks ?? []).forEach((n, i) => {
      const spec = doc.networkSpecs?.[n.name];
      if (!spec) throw failedPrecondition(`container ${name}: network ${n.name} has no spec (not resolved by the loader)`);
      const ip = freeAddress(parseSubnet(spec.subnet), taken, n.name);
      taken.add(ip);
      addresses[n.name] = ip;
      aliases[n.name] = n.aliases;
      const net = netavarkNetwork(ctx.root, n.name, spec);
      options.networks[net.name] = { static_ips: [ip], aliases: n.aliases, interface_name: `eth${i}` };
      options.network_info[net.name] = net;
    });
    const dns = Object.values(options.network_info).map((n) => n.subnets[0]!.gateway);
    await setUp(ctx, { container: name, state: 'setting-up', addresses, aliases, ports: doc.spec.ports ?? [], dns, netavark: options });
    return { dns, addresses };
  });
}

/** Record (setting-up), namespace, netavark, record (ready); on any failure, torn down again. */
async function setUp(ctx: NetworkContext, record: Attachment): Promise<void> {
  const name = record.container;
  await writeAttachment(ctx.root, { ...record, state: 'setting-up' });
  try {
    await createNetns(ctx.root, name, ctx.signal);
    await runNetavark(ctx.root, 'setup', netnsPath(ctx.root, name), record.netavark, ctx.signal);
  } catch (err) {
    await teardown({ ...ctx, signal: undefined }, name);
    throw err;
  }
  await writeAttachment(ctx.root, { ...record, state: 'ready' });
}

/**
 * Before a new task in an existing container: a power cut (or anything that unmounted its
 * namespace, or a crash mid-setup) leaves the record but not a working namespace, which the task
 * could not join. The container is then torn down and set up again from its record, with the
 * same addresses and ports. Nothing to do for a container that is not on networks.
 */
export async function reattachContainer(ctx: NetworkContext, name: string): Promise<void> {
  const record = await readAttachment(ctx.root, name);
  if (!record || (record.state === 'ready' && (await netnsMounted(ctx.root, name)))) return;
  await locked(ctx, async () => {
    await teardown(ctx, name);
    await setUp(ctx, record);
  });
}

/**
 * The spec the runtime gets for `doc`: unchanged without networks; with them, the container is
 * attached first and resolves names through aardvark-dns unless its spec sets `dns`.
 */
export async function specOnNetworks(ctx: NetworkContext, doc: ContainerDoc): Promise<ContainerSpec> {
  if (!doc.spec.networks?.length) return doc.spec;
  const attached = await attachContainer(ctx, doc);
  return doc.spec.dns?.length ? doc.spec : { ...doc.spec, dns: attached.dns };
}

/** Take the container off its networks and remove its namespace and record. Idempotent. */
export async function detachContainer(ctx: NetworkContext, name: string): Promise<void> {
  if (!(await readAttachment(ctx.root, name)) && !(await netnsMounted(ctx.root, name))) return;
  await locked(ctx, () => teardown(ctx, name));
}

/**
 * Tear down from the record. netavark's teardown needs the veth it set up: when a crash or a
 * reboot left a namespace without it (or no namespace), a fresh namespace is set up again and
 * then torn down, which leaves netavark's firewall and bridge state as consistent as it found it.
 */
async function teardown(ctx: NetworkContext, name: string): Promise<void> {
  const record = await readAttachment(ctx.root, name);
  if (record) {
    const netns = netnsPath(ctx.root, name);
    if (!(await netnsMounted(ctx.root, name))) await createNetns(ctx.root, name, ctx.signal);
    try {
      await runNetavark(ctx.root, 'teardown', netns, record.netavark, ctx.signal);
    } catch (err) {
      if (!isKind(err, 'Unavailable')) throw err;
      ctx.warn?.(`${(err as Error).message}; setting the namespace up again to tear it down cleanly`);
      await createNetns(ctx.root, name, ctx.signal);
      try {
        await runNetavark(ctx.root, 'setup', netns, record.netavark, ctx.signal);
      } catch (again) {
        if (!isKind(again, 'Unavailable')) throw again;
        ctx.warn?.((again as Error).message);
      }
      await runNetavark(ctx.root, 'teardown', netns, record.netavark, ctx.signal).catch((e) => ctx.warn?.((e as Error).message));
    }
  }
  await removeNetns(ctx.root, name, ctx.signal);
  await deleteAttachment(ctx.root, name);
}

/** Tear down every record whose container is not `recorded` (start-up recovery). */
export async function recoverNetworks(ctx: NetworkContext, recorded: (container: string) => boolean): Promise<string[]> {
  const gone = (await listAttachments(ctx.root)).map((a) => a.container).filter((c) => !recorded(c));
  for (const c of gone) await locked(ctx, () => teardown(ctx, c));
  return gone;
}

/** For `berth inspect`: the container's addresses and published ports, if it is on networks. */
export async function containerNetworking(
  root: string,
  name: string,
): Promise<{ addresses: Record<string, string>; aliases: Record<string, string[]>; ports: string[]; dns: string[]; state: Attachment['state'] } | null> {
  const a = await readAttachment(root, name);
  return a ? { addresses: a.addresses, aliases: a.aliases, ports: a.ports.map(formatPort), dns: a.dns, state: a.state } : null;
}
