/**
 * Who holds a host port: the listening (TCP) or bound (UDP) sockets as `ss` (iproute2) reports
 * them, with the owning process, so a blocked container can say `port 8080 in use by pid 412 nginx`.
 */
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import type { PortSpec } from '../manifest/types.ts';

const run = promisify(execFile);

export interface PortHolder {
  address: string;
  port: number;
  pid?: number;
  command?: string;
}

const WILDCARD = new Set(['*', '0.0.0.0', '::', '[::]']);

/** Parse `ss -H -ln{t|u}p` lines: `LISTEN 0 4096 127.0.0.1:8080 0.0.0.0:* users:(("nginx",pid=412,fd=6))`. */
export function parseSs(text: string): PortHolder[] {
  const out: PortHolder[] = [];
  for (const line of text.split('\n')) {
    const cols = line.trim().split(/\s+/);
    if (cols.length < 5) continue;
    const local = cols[3]!;
    const i = local.lastIndexOf(':');
    const port = Number(local.slice(i + 1));
    if (!Number.isInteger(port)) continue;
    // An address may carry an interface (`127.0.0.1%lo`).
    const address = local.slice(0, i).replace(/%.*$/, '');
    const user = /\("([^"]*)",pid=(\d+)/.exec(line);
    out.push({ address, port, ...(user ? { command: user[1], pid: Number(user[2]) } : {}) });
  }
  return out;
}

/** The host's listening (TCP) or bound (UDP) sockets, with their processes. */
export async function listPortHolders(protocol: PortSpec['protocol'], signal?: AbortSignal): Promise<PortHolder[]> {
  const { stdout } = await run('ss', ['-H', '-ln', protocol === 'udp' ? '-u' : '-t', '-p'], { signal });
  return parseSs(stdout);
}

/** Those of `holders` (sockets of `port`'s protocol) that `port` would collide with. */
export function holdersOf(port: PortSpec, holders: PortHolder[]): PortHolder[] {
  const wanted = port.hostIp?.replace(/^\[|\]$/g, '');
  return holders.filter(
    (h) =>
      h.port >= port.hostPort &&
      h.port < port.hostPort + port.range &&
      (wanted === undefined || WILDCARD.has(h.address) || h.address.replace(/^\[|\]$/g, '') === wanted),
  );
}

/** Which of berth's containers a host process belongs to, if any. */
export type ProcessOwner = (pid: number) => Promise<string | undefined>;

/**
 * The first of `sockets` that `port` collides with, other than a process of the container `self`
 * itself (its version being replaced, on the host's network, stops before the new one is set up),
 * with the container it belongs to, if one does.
 */
export async function foreignHolder(
  port: PortSpec,
  sockets: PortHolder[],
  self: string,
  ownerOf?: ProcessOwner,
): Promise<{ holder: PortHolder; owner?: string } | undefined> {
  for (const holder of holdersOf(port, sockets)) {
    const owner = holder.pid === undefined ? undefined : await ownerOf?.(holder.pid);
    if (owner !== self) return owner === undefined ? { holder } : { holder, owner };
  }
  return undefined;
}

export function describeHolder(h: PortHolder, owner?: string): string {
  const who = h.pid === undefined ? `port ${h.port} in use (${h.address})` : `port ${h.port} in use by pid ${h.pid} ${h.command ?? ''}`.trimEnd();
  return owner === undefined ? who : `${who} (container ${owner})`;
}
