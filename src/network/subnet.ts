/**
 * An IPv4 subnet as a network's address pool: the first host address is the gateway (the bridge,
 * where aardvark-dns answers), containers get the following ones. Validation by node:net.
 */
import { isIPv4 } from 'node:net';
import { invalidArgument, resourceExhausted } from '../errors.ts';

export interface Subnet {
  /** The CIDR as written canonically: `10.89.0.0/24`. */
  cidr: string;
  prefix: number;
  gateway: string;
  /** First and last address containers may get, as numbers. */
  first: number;
  last: number;
}

const toNumber = (ip: string) => ip.split('.').reduce((n, o) => n * 256 + Number(o), 0);
const toText = (n: number) => [24, 16, 8, 0].map((s) => Math.floor(n / 2 ** s) % 256).join('.');

/** InvalidArgument unless `cidr` is an IPv4 network address with a prefix of 8 to 30 bits. */
export function parseSubnet(cidr: string): Subnet {
  const [ip, bits, extra] = cidr.split('/');
  const prefix = Number(bits);
  if (extra !== undefined || !ip || !isIPv4(ip) || !Number.isInteger(prefix) || prefix < 8 || prefix > 30) {
    throw invalidArgument(`subnet "${cidr}" is not an IPv4 CIDR with a prefix of 8 to 30 bits (e.g. 10.89.0.0/24)`);
  }
  const size = 2 ** (32 - prefix);
  const base = toNumber(ip);
  if (base % size !== 0) throw invalidArgument(`subnet "${cidr}": ${ip} is not the network's first address (${toText(base - (base % size))}/${prefix})`);
  return { cidr: `${ip}/${prefix}`, prefix, gateway: toText(base + 1), first: base + 2, last: base + size - 2 };
}

/** Whether two subnets share an address. */
export function subnetsOverlap(a: Subnet, b: Subnet): boolean {
  return a.first - 2 <= b.last + 1 && b.first - 2 <= a.last + 1;
}

/** The lowest container address of `subnet` not in `taken`; ResourceExhausted when none is left. */
export function freeAddress(subnet: Subnet, taken: ReadonlySet<string>, network: string): string {
  for (let n = subnet.first; n <= subnet.last; n++) {
    const ip = toText(n);
    if (!taken.has(ip)) return ip;
  }
  throw resourceExhausted(`network ${network}: no free address left in ${subnet.cidr}`);
}

/** The first and last address (as numbers) of an IPv4 route destination (`10.0.0.0/8`, `10.1.2.3`); undefined for others. */
export function addressRange(dst: string): [number, number] | undefined {
  const [ip, bits] = dst.split('/');
  const prefix = bits === undefined ? 32 : Number(bits);
  if (!ip || !isIPv4(ip) || !Number.isInteger(prefix) || prefix < 0 || prefix > 32) return undefined;
  const size = 2 ** (32 - prefix);
  const start = toNumber(ip) - (toNumber(ip) % size);
  return [start, start + size - 1];
}
