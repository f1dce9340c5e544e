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

/** The first of `holders` (sockets of `port`'s protocol) that `port` would collide with, if any. */
export function holderOf(port: PortSpec, holders: PortHolder[]): PortHolder | undefined {
  const wanted = port.hostIp?.replace(/^\[|\]$/g, '');
  return holders.find(
    (h) =>
      h.port >= port.hostPort &&
      h.port < port.hostPort + port.range &&
      (wanted === undefined || WILDCARD.has(h.address) || h.address.replace(/^\[|\]$/g, '') === wanted),
  );
}

/** The first host socket that `port` would collide with, if any. */
export async function findPortHolder(port: PortSpec, signal?: AbortSignal): Promise<PortHolder | undefined> {
  return holderOf(port, await listPortHolders(port.protocol, signal));
}

export function describeHolder(h: PortHolder): string {
  return h.pid === undefined ? `port ${h.port} in use (${h.address})` : `port ${h.port} in use by pid ${h.pid} ${h.command ?? ''}`.trimEnd();
}
