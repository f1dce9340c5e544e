/**
 * A network's subnet must not be one the host already routes elsewhere (its LAN, a VPN, a bridge
 * another engine or an earlier berth left): the container's traffic would go the wrong way without
 * any error (a published port answers EHOSTUNREACH). The host's routes as `ip -j route` reports them.
 */
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { addressRange, type Subnet } from './subnet.ts';

const run = promisify(execFile);

export interface HostRoute {
  dst: string;
  dev: string;
}

/** The first route of the main table that overlaps `subnet` through another device than `bridge`. */
export async function conflictingRoute(subnet: Subnet, bridge: string, signal?: AbortSignal): Promise<HostRoute | undefined> {
  const { stdout } = await run('ip', ['-j', 'route', 'show', 'table', 'main'], { signal });
  const routes = JSON.parse(stdout || '[]') as HostRoute[];
  const [first, last] = [subnet.first - 2, subnet.last + 1];
  return routes.find((r) => {
    if (r.dev === bridge) return false;
    const range = addressRange(r.dst);
    return range !== undefined && range[0] <= last && first <= range[1];
  });
}
