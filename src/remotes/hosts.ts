/**
 * Where to fetch a registry's content from: the endpoints for one registry host, in the order to
 * try them (mirrors first, the registry itself last), each with its scheme, path prefix, TLS
 * settings, headers and capabilities. Sources, merged:
 *  - containerd's `hosts.toml` under `<registry.configPath>/<host[:port]>/hosts.toml` (or
 *    `_default/hosts.toml`): `server`, `[host."<url>"]` with `capabilities`, `ca`, `skip_verify`,
 *    `header`, `override_path` (read as containerd does, see core/remotes/docker/config);
 *  - berth's config `registry.hosts["<host>"]`: `mirrors`, `plain_http`, `skip_verify`, `ca`, `headers`
 *    (a config mirror gets the headers of its own `registry.hosts` entry, never the registry's).
 * Loopback registries (localhost, 127.0.0.0/8, ::1) use plain HTTP unless configured; all else HTTPS.
 */
import { readFile } from 'node:fs/promises';
import { join, isAbsolute, dirname } from 'node:path';
import TOML from '@iarna/toml';
import type { Config } from '../config/config.ts';
import { isMissing } from '../durable-file.ts';
import { invalidArgument } from '../errors.ts';
import { isLoopbackHost } from '../oci/reference.ts';

export type Capability = 'pull' | 'resolve' | 'push';

export interface RegistryEndpoint {
  /** `scheme://host[:port]` */
  origin: string;
  /** Path prefix before `/<repo>/…`: `/v2` unless overridden. */
  path: string;
  /** The registry (reference domain) this endpoint serves. */
  registry: string;
  capabilities: Set<Capability>;
  skipVerify: boolean;
  /** CA bundle paths (PEM). */
  ca: string[];
  /** Client certificates for mutual TLS: cert path and key path (absent: the key is in the cert file). */
  client: Array<{ cert: string; key?: string }>;
  headers: Record<string, string>;
  /** True for a mirror: requests get `?ns=<registry>`. */
  mirror: boolean;
}

const ALL_CAPS: Capability[] = ['pull', 'resolve', 'push'];

/** The host that actually serves `docker.io`. */
export function defaultServer(registry: string, plainHttp: boolean | undefined): string {
  if (registry === 'docker.io') return 'https://registry-1.docker.io';
  const http = plainHttp ?? isLoopbackHost(registry);
  return `${http ? 'http' : 'https'}://${registry}`;
}

async function readHostsToml(configPath: string, registry: string): Promise<{ file: string; data: any } | undefined> {
  // containerd escapes ':' in dir names as-is on Linux; `[::1]:5000` dirs also exist as written.
  for (const name of [registry, '_default']) {
    const file = join(configPath, name, 'hosts.toml');
    let text: string;
    try {
      text = await readFile(file, 'utf8');
    } catch (err: any) {
      if (isMissing(err)) continue;
      throw invalidArgument(`${file}: cannot read: ${err.message}`, { cause: err, place: { file } });
    }
    try {
      return { file, data: JSON.parse(JSON.stringify(TOML.parse(text))) };
    } catch (err: any) {
      const line = typeof err.line === 'number' ? err.line + 1 : undefined;
      const col = typeof err.col === 'number' ? err.col + 1 : undefined;
      throw invalidArgument(`${file}:${line ?? '?'}:${col ?? '?'}: invalid TOML: ${String(err.message).split('\n')[0]}`, {
        cause: err,
        place: { file, line, col },
      });
    }
  }
  return undefined;
}

function asList(v: unknown): string[] {
  if (v === undefined) return [];
  return Array.isArray(v) ? v.map(String) : [String(v)];
}

function headersOf(v: unknown): Record<string, string> {
  const out: Record<string, string> = {};
  if (v && typeof v === 'object') for (const [k, val] of Object.entries(v)) out[k.toLowerCase()] = asList(val).join(', ');
  return out;
}

function endpointFromUrl(raw: string, registry: string, file: string, table: any, mirror: boolean): RegistryEndpoint {
  let u: URL;
  try {
    u = new URL(raw.includes('://') ? raw : `https://${raw}`);
  } catch {
    throw invalidArgument(`${file}: "${raw}" is not a valid host URL`, { place: { file } });
  }
  const caps = table.capabilities === undefined ? ALL_CAPS : asList(table.capabilities);
  for (const c of caps)
    if (!ALL_CAPS.includes(c as Capability)) throw invalidArgument(`${file}: host "${raw}": unknown capability "${c}"`, { place: { file } });
  const basePath = u.pathname.replace(/\/+$/, '');
  const path = table.override_path ? basePath : basePath.endsWith('/v2') ? basePath : `${basePath}/v2`;
  const abs = (p: string) => (isAbsolute(p) ? p : join(dirname(file), p));
  const ca = asList(table.ca).map(abs);
  return {
    origin: u.origin,
    path,
    registry,
    capabilities: new Set(caps as Capability[]),
    skipVerify: table.skip_verify === true,
    ca,
    client: clientCerts(table.client, file).map((c) => ({ cert: abs(c.cert), ...(c.key ? { key: abs(c.key) } : {}) })),
    headers: headersOf(table.header),
    mirror,
  };
}

/**
 * containerd's `client` forms: "cert.pem" (key inside), ["cert.pem", "key.pem"] (one pair), or
 * [["cert", "key"], ["cert2", ""]] (several pairs).
 */
function clientCerts(v: unknown, file: string): Array<{ cert: string; key?: string }> {
  if (v === undefined) return [];
  if (typeof v === 'string') return [{ cert: v }];
  if (Array.isArray(v) && v.every((x) => typeof x === 'string')) {
    const [cert, key] = v as string[];
    return cert ? [{ cert, ...(key ? { key } : {}) }] : [];
  }
  if (Array.isArray(v) && v.every((x) => Array.isArray(x))) {
    return (v as string[][]).filter((p) => p[0]).map(([cert, key]) => ({ cert: cert!, ...(key ? { key } : {}) }));
  }
  throw invalidArgument(`${file}: "client" must be a path, [cert, key], or a list of [cert, key] pairs`, { place: { file } });
}

/** The endpoints to try for `registry`, best first. */
export async function registryEndpoints(registry: string, config: Config): Promise<RegistryEndpoint[]> {
  const hc = config.registry.hosts[registry];
  const out: RegistryEndpoint[] = [];
  const configHeaders = headersOf(hc?.headers);
  for (const m of hc?.mirrors ?? []) {
    const ep = endpointFromUrl(m, registry, `config registry.hosts."${registry}".mirrors`, { capabilities: ['pull', 'resolve'] }, true);
    ep.skipVerify = hc?.skipVerify ?? false;
    // The registry's headers are for the registry (they may carry secrets): a mirror gets only
    // the headers configured for the mirror's own host.
    ep.headers = headersOf(config.registry.hosts[new URL(ep.origin).host]?.headers);
    out.push(ep);
  }
  const toml = await readHostsToml(config.registry.configPath, registry);
  let server: RegistryEndpoint;
  if (toml) {
    for (const [url, table] of Object.entries<any>(toml.data.host ?? {})) {
      out.push(endpointFromUrl(url, registry, toml.file, table ?? {}, true));
    }
    const serverUrl: string = toml.data.server ?? defaultServer(registry, hc?.plainHttp);
    server = endpointFromUrl(serverUrl, registry, toml.file, toml.data, false);
  } else {
    server = endpointFromUrl(defaultServer(registry, hc?.plainHttp), registry, 'config', {}, false);
  }
  if (hc) {
    server.skipVerify = server.skipVerify || hc.skipVerify;
    if (hc.ca) server.ca.push(hc.ca);
    server.headers = { ...server.headers, ...configHeaders };
  }
  // A mirror that names the registry itself is not a mirror.
  for (const ep of out) if (ep.origin === server.origin) ep.mirror = false;
  out.push(server);
  return out;
}

/** Build the URL of `<endpoint>/<repo>/<kind>/<ref>`, with `ns` for mirrors. */
export function endpointUrl(ep: RegistryEndpoint, repo: string, rest: string): string {
  const url = new URL(`${ep.origin}${ep.path}/${repo}/${rest}`);
  if (ep.mirror) url.searchParams.set('ns', ep.registry);
  return url.toString();
}
