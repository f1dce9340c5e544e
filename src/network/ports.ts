/**
 * Published ports in Compose's short syntax, parsed and formatted: `8080:80`,
 * `127.0.0.1:9000:9000/udp`, `8000-8001:80-81`, `[::1]:53:53/udp`. A port without a host port
 * (`80`) is refused: Compose would pick a random host port, which a device's users could not find.
 */
import { invalidArgument } from '../errors.ts';
import type { PortSpec } from '../manifest/types.ts';

const SHORT = /^(?:(?:\[([0-9a-fA-F:.]+)\]|(\d{1,3}(?:\.\d{1,3}){3})):)?(\d+)(?:-(\d+))?:(\d+)(?:-(\d+))?(?:\/(tcp|udp))?$/;

/** One `ports` entry; InvalidArgument naming `where` when it is not one berth can publish. */
export function parsePort(text: string, where: string): PortSpec {
  const m = SHORT.exec(text.trim());
  if (!m) {
    throw invalidArgument(
      `${where}: "${text}" is not a published port: write [hostIp:]hostPort:containerPort[/tcp|udp], e.g. 8080:80 or 127.0.0.1:9000:9000/udp`,
    );
  }
  const [, ip6, ip4, hostFrom, hostTo, ctrFrom, ctrTo, proto] = m;
  const n = (s: string) => Number.parseInt(s, 10);
  const hostPort = n(hostFrom!);
  const containerPort = n(ctrFrom!);
  const hostRange = hostTo === undefined ? 1 : n(hostTo) - hostPort + 1;
  const ctrRange = ctrTo === undefined ? 1 : n(ctrTo) - containerPort + 1;
  for (const p of [hostPort, containerPort, hostPort + hostRange - 1, containerPort + ctrRange - 1]) {
    if (p < 1 || p > 65535) throw invalidArgument(`${where}: "${text}": ports are 1 to 65535`);
  }
  if (hostRange < 1 || ctrRange < 1 || hostRange !== ctrRange) {
    throw invalidArgument(`${where}: "${text}": a host port range and its container port range must be ascending and of the same length`);
  }
  const hostIp = ip6 ?? ip4;
  if (ip4?.split('.').some((o) => n(o) > 255)) throw invalidArgument(`${where}: "${text}": ${ip4} is not an IPv4 address`);
  return { ...(hostIp && hostIp !== '0.0.0.0' ? { hostIp } : {}), hostPort, containerPort, protocol: proto === 'udp' ? 'udp' : 'tcp', range: hostRange };
}

/** Back to the short syntax (for inspect and messages). */
export function formatPort(p: PortSpec): string {
  const span = (from: number) => (p.range > 1 ? `${from}-${from + p.range - 1}` : `${from}`);
  const ip = p.hostIp === undefined ? '' : p.hostIp.includes(':') ? `[${p.hostIp}]:` : `${p.hostIp}:`;
  return `${ip}${span(p.hostPort)}:${span(p.containerPort)}/${p.protocol}`;
}

/** Whether two published ports would claim the same host port (same protocol, overlapping address and range). */
export function portsOverlap(a: PortSpec, b: PortSpec): boolean {
  if (a.protocol !== b.protocol) return false;
  if (a.hostIp !== undefined && b.hostIp !== undefined && a.hostIp !== b.hostIp) return false;
  return a.hostPort <= b.hostPort + b.range - 1 && b.hostPort <= a.hostPort + a.range - 1;
}
