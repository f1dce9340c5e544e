/**
 * berth's TOML config (`--config`, default /etc/berth/config.toml). A missing file means defaults;
 * an unknown key or a wrong type is an InvalidArgument error naming the key.
 */
import { readFile } from 'node:fs/promises';
import { hostname } from 'node:os';
import path from 'node:path';
import TOML from '@iarna/toml';
import { invalidArgument } from '../errors.ts';
import { chooseValidator, type ValidatorSpec } from '../schema-validator.ts';
import * as generatedValidator from './config-validator.generated.ts';
import { parseUpdateWindow, type UpdateWindow } from './update-window.ts';
import { parseDuration, parseSize } from './units.ts';

export interface HostConfig {
  /** Use plain HTTP (default: true for loopback hosts, false otherwise). */
  plainHttp?: boolean;
  skipVerify: boolean;
  /** Path to a PEM CA bundle for this host. */
  ca?: string;
  headers: Record<string, string>;
  /** Mirror endpoints tried in order before the host itself, e.g. `http://127.0.0.1:5001`. */
  mirrors: string[];
  username?: string;
  password?: string;
  /**
   * Token realm hosts (`host[:port]`) that may receive this host's credentials although they are
   * neither HTTPS nor this host itself (`auth_realms`). See src/remotes/realm-policy.ts.
   */
  authRealms: string[];
}

/** `[source.git]`: where the manifests come from when berth fetches them itself (src/source/git.ts). */
export interface GitSourceConfig {
  url: string;
  /** A branch, a tag or a commit. */
  ref: string;
  /** A directory inside the repository, relative and normalised; '' for its root. */
  path: string;
  intervalMs: number;
  sshKey?: string;
  knownHosts?: string;
  /** A file holding an HTTPS token (never logged). */
  tokenFile?: string;
  /** Accept a fetched commit that does not descend from the applied one (a force-push back). */
  allowRewind: boolean;
  /** Absent: commits are applied unverified (status says so). */
  verify?: { mode: 'ssh'; allowedSigners: string } | { mode: 'gpg'; keyring: string };
}

/** `[notify]`: a webhook that receives every event and each change of the device's status (src/notify/). */
export interface NotifyConfig {
  url: string;
  /** One POST, connection to end of response. */
  timeoutMs: number;
  headers: Record<string, string>;
  /** A file whose contents are sent as `Authorization: Bearer …` (read at each request; never logged). */
  tokenFile?: string;
  /** A PEM CA bundle for an https receiver with a private CA. */
  ca?: string;
  /** Events kept for the receiver while it is unreachable; older ones are dropped, and counted. */
  queueSize: number;
  /** Longest wait between two attempts (the back-off doubles from 1 s up to it). */
  retryBackoffMaxMs: number;
}

export interface Config {
  root: string;
  snapshotter: 'overlayfs' | 'native' | 'auto';
  logLevel: string;
  pull: {
    concurrency: number;
    /** Failed attempts in a row allowed on top of the retry budget; undefined: the budget alone decides. */
    maxRetries?: number;
    /** Time a blob (or manifest) may go without progress, retrying, before the pull gives up. */
    retryBudgetMs: number;
    /** First back-off between retries; doubles up to `retryBackoffMaxMs`. */
    retryBackoffMs: number;
    /** Longest wait between two attempts (a server's Retry-After is capped to it too). */
    retryBackoffMaxMs: number;
    /** os/arch[/variant]; empty = the host's */
    platform?: string;
    staleIngestAgeMs: number;
  };
  registry: {
    /** containerd-style hosts.toml directory (`<dir>/<host[:port]>/hosts.toml`). */
    configPath: string;
    /** Docker config.json with `auths` (credentials). */
    dockerConfig: string;
    hosts: Record<string, HostConfig>;
  };
  runtime: {
    binary: string;
    logMaxBytes: number;
    logMaxFiles: number;
    /** Pids limit of a container whose manifest sets no `resources.pids` (0: none). */
    pidsLimit: number;
    /** The static init `init: true` containers run as PID 1 (the runtime's default when unset). */
    initBinary?: string;
  };
  reconcile: {
    /** The desired state: a directory tree of manifests (or one file), used when `-f` is not given. */
    manifests: string;
    resyncIntervalMs: number;
    importDir: string;
  };
  gc: {
    reserveBytes: number;
  };
  /** Bounds on one layer's apply, against decompression bombs (src/diff/limits.ts). */
  unpack: {
    maxLayerBytes: number;
    maxLayerEntries: number;
    /** One PAX or GNU long-name header. */
    maxHeaderBytes: number;
    /** Which code applies layers (src/diff/layer-applier.ts): the native helper, JavaScript, or native when it builds. */
    apply: 'auto' | 'native' | 'js';
  };
  metrics: {
    /** `127.0.0.1:9097` or `unix:/run/berth/metrics.sock`; empty disables. */
    address: string;
    /** Serve on a TCP address that is not loopback (`allow_remote`); off: such an address is refused. */
    allowRemote: boolean;
  };
  updates: {
    /** When updates may restart running containers, in local time; empty: any time. */
    windows: UpdateWindow[];
    /** A hold of the update lock longer than this no longer delays an update; undefined: no limit. */
    maxLockHoldMs?: number;
    /** Where the update lock file appears in every container. */
    lockPath: string;
  };
  source: { git?: GitSourceConfig };
  /** `[secrets]`: the device's age key, which `Secret` documents are encrypted to (src/secrets). */
  secrets: { identity: string };
  /**
   * Who this device is, for fleet selectors, overlays and `${device.…}` substitution
   * (src/manifest/fleet.ts); present only with a `[device]` section, which turns the fleet layout on.
   */
  device?: { name: string; labels: Record<string, string> };
  notify?: NotifyConfig;
}

export const DEFAULT_CONFIG_PATH = '/etc/berth/config.toml';
export const DEFAULT_ROOT = '/var/lib/berth';

const sizeOrNumber = { type: ['string', 'integer'] };
const durationOrNumber = { type: ['string', 'number'] };
const strictObject = (properties: Record<string, unknown>) => ({ type: 'object', additionalProperties: false, properties });

export const SCHEMA = strictObject({
  root: { type: 'string' },
  snapshotter: { enum: ['overlayfs', 'native', 'auto'] },
  log_level: { enum: ['trace', 'debug', 'info', 'warn', 'error', 'fatal', 'silent'] },
  pull: strictObject({
    concurrency: { type: 'integer', minimum: 1, maximum: 64 },
    max_retries: { type: 'integer', minimum: 0, maximum: 100 },
    retry_budget: durationOrNumber,
    retry_backoff: durationOrNumber,
    retry_backoff_max: durationOrNumber,
    platform: { type: 'string' },
    stale_ingest_age: durationOrNumber,
  }),
  registry: strictObject({
    config_path: { type: 'string' },
    docker_config: { type: 'string' },
    hosts: {
      type: 'object',
      additionalProperties: strictObject({
        plain_http: { type: 'boolean' },
        skip_verify: { type: 'boolean' },
        ca: { type: 'string' },
        headers: { type: 'object', additionalProperties: { type: 'string' } },
        mirrors: { type: 'array', items: { type: 'string' } },
        username: { type: 'string' },
        password: { type: 'string' },
        auth_realms: { type: 'array', items: { type: 'string', pattern: '^[^/\\s@]+$' } },
      }),
    },
  }),
  runtime: strictObject({
    binary: { type: 'string' },
    log_max_size: sizeOrNumber,
    log_max_files: { type: 'integer', minimum: 1, maximum: 100 },
    pids_limit: { type: 'integer', minimum: 0 },
    init_binary: { type: 'string' },
  }),
  reconcile: strictObject({
    manifests: { type: 'string' },
    resync_interval: durationOrNumber,
    import_dir: { type: 'string' },
  }),
  gc: strictObject({ reserve: sizeOrNumber }),
  unpack: strictObject({
    max_layer_size: sizeOrNumber,
    max_layer_entries: { type: 'integer', minimum: 1 },
    max_header_size: sizeOrNumber,
    apply: { enum: ['auto', 'native', 'js'] },
  }),
  metrics: strictObject({ address: { type: 'string' }, allow_remote: { type: 'boolean' } }),
  secrets: strictObject({ identity: { type: 'string', minLength: 1 } }),
  updates: strictObject({
    windows: { type: 'array', items: { type: 'string' } },
    max_lock_hold: durationOrNumber,
    lock_path: { type: 'string' },
  }),
  source: strictObject({
    git: {
      ...strictObject({
        url: { type: 'string', minLength: 1 },
        ref: { type: 'string', minLength: 1 },
        path: { type: 'string' },
        interval: durationOrNumber,
        ssh_key: { type: 'string' },
        known_hosts: { type: 'string' },
        token_file: { type: 'string' },
        allow_rewind: { type: 'boolean' },
        verify: {
          ...strictObject({ mode: { enum: ['ssh', 'gpg'] }, allowed_signers: { type: 'string' }, keyring: { type: 'string' } }),
          required: ['mode'],
        },
      }),
      required: ['url'],
    },
  }),
  device: strictObject({
    name: { type: 'string', pattern: '^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$' },
    // Kubernetes label syntax: selectors read the same, and a substituted value cannot change the YAML around it.
    labels: {
      type: 'object',
      propertyNames: { pattern: '^([a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*/)?[A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?$' },
      additionalProperties: { type: 'string', pattern: '^([A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?)?$' },
    },
  }),
  notify: {
    ...strictObject({
      url: { type: 'string', minLength: 1 },
      timeout: durationOrNumber,
      headers: { type: 'object', additionalProperties: { type: 'string' } },
      token_file: { type: 'string', minLength: 1 },
      ca: { type: 'string', minLength: 1 },
      // At most the events metadata.db keeps (src/metadata/metadata.ts, maxEvents): the queue is that table.
      queue_size: { type: 'integer', minimum: 1, maximum: 1000 },
      retry_backoff_max: durationOrNumber,
    }),
    required: ['url'],
  },
});

/** How Ajv compiles SCHEMA, at build time (src/schema-validator.ts: Ajv is not loaded at run time). */
export const CONFIG_VALIDATOR: ValidatorSpec = { draft: '07', options: { allErrors: false, allowUnionTypes: true } };
const validateRaw = chooseValidator(SCHEMA, CONFIG_VALIDATOR, generatedValidator);

type Raw = Record<string, any>;

/** Build a Config from a parsed TOML table (already an object). `source` names the file in errors. */
export function configFromObject(raw: Raw, source = 'config'): Config {
  if (!validateRaw(raw)) {
    const e = validateRaw.errors![0]!;
    const key = e.instancePath.replace(/^\//, '').replaceAll('/', '.');
    if (e.keyword === 'additionalProperties') {
      const extra = (e.params as { additionalProperty: string }).additionalProperty;
      throw invalidArgument(`${source}: unknown key "${key ? `${key}.` : ''}${extra}"`);
    }
    throw invalidArgument(`${source}: key "${key}" ${e.message}`);
  }
  const root: string = raw.root ?? DEFAULT_ROOT;
  const hosts: Record<string, HostConfig> = {};
  for (const [name, h] of Object.entries<Raw>(raw.registry?.hosts ?? {})) {
    hosts[name] = {
      plainHttp: h.plain_http,
      skipVerify: h.skip_verify ?? false,
      ca: h.ca,
      headers: h.headers ?? {},
      mirrors: h.mirrors ?? [],
      username: h.username,
      password: h.password,
      authRealms: h.auth_realms ?? [],
    };
  }
  const at = (key: string) => `${source}: key "${key}"`;
  return {
    root,
    snapshotter: raw.snapshotter ?? 'auto',
    logLevel: raw.log_level ?? 'info',
    pull: {
      concurrency: raw.pull?.concurrency ?? 3,
      maxRetries: raw.pull?.max_retries,
      retryBudgetMs: parseDuration(raw.pull?.retry_budget ?? '10m', at('pull.retry_budget')),
      retryBackoffMs: parseDuration(raw.pull?.retry_backoff ?? '200ms', at('pull.retry_backoff')),
      retryBackoffMaxMs: parseDuration(raw.pull?.retry_backoff_max ?? '30s', at('pull.retry_backoff_max')),
      platform: raw.pull?.platform || undefined,
      staleIngestAgeMs: parseDuration(raw.pull?.stale_ingest_age ?? '24h', at('pull.stale_ingest_age')),
    },
    registry: {
      configPath: raw.registry?.config_path ?? '/etc/berth/certs.d',
      dockerConfig: raw.registry?.docker_config ?? `${process.env.HOME ?? '/root'}/.docker/config.json`,
      hosts,
    },
    runtime: {
      binary: raw.runtime?.binary ?? 'runc',
      logMaxBytes: parseSize(raw.runtime?.log_max_size ?? '10Mi', at('runtime.log_max_size')),
      logMaxFiles: raw.runtime?.log_max_files ?? 3,
      pidsLimit: raw.runtime?.pids_limit ?? 2048,
      initBinary: raw.runtime?.init_binary,
    },
    reconcile: {
      manifests: raw.reconcile?.manifests ?? '/etc/berth/manifests',
      resyncIntervalMs: parseDuration(raw.reconcile?.resync_interval ?? '30s', at('reconcile.resync_interval')),
      importDir: raw.reconcile?.import_dir ?? `${root}/import`,
    },
    gc: { reserveBytes: parseSize(raw.gc?.reserve ?? '256Mi', at('gc.reserve')) },
    unpack: {
      maxLayerBytes: parseSize(raw.unpack?.max_layer_size ?? '16Gi', at('unpack.max_layer_size')),
      maxLayerEntries: raw.unpack?.max_layer_entries ?? 1_000_000,
      maxHeaderBytes: parseSize(raw.unpack?.max_header_size ?? '1Mi', at('unpack.max_header_size')),
      apply: raw.unpack?.apply ?? 'auto',
    },
    metrics: { address: raw.metrics?.address ?? '', allowRemote: raw.metrics?.allow_remote ?? false },
    updates: {
      windows: (raw.updates?.windows ?? []).map((w: string, i: number) => parseUpdateWindow(w, at(`updates.windows[${i}]`))),
      maxLockHoldMs: raw.updates?.max_lock_hold === undefined ? undefined : parseDuration(raw.updates.max_lock_hold, at('updates.max_lock_hold')),
      lockPath: containerPath(raw.updates?.lock_path ?? '/run/berth/lock', at('updates.lock_path')),
    },
    source: { git: raw.source?.git && gitSource(raw.source.git, at) },
    secrets: { identity: raw.secrets?.identity ?? path.join(root, 'age.key') },
    device: raw.device && { name: raw.device.name ?? hostname(), labels: raw.device.labels ?? {} },
    notify: raw.notify && notifyConfig(raw.notify, at),
  };
}

function notifyConfig(n: Raw, at: (key: string) => string): NotifyConfig {
  let url: URL;
  try {
    url = new URL(n.url);
  } catch {
    throw invalidArgument(`${at('notify.url')}: "${n.url}" is not a URL`);
  }
  if (url.protocol !== 'https:' && url.protocol !== 'http:') throw invalidArgument(`${at('notify.url')}: "${n.url}" must be http:// or https://`);
  // A token is a credential: it goes in clear only to this machine.
  const loopback = ['localhost', '127.0.0.1', '[::1]'].includes(url.hostname) || url.hostname.startsWith('127.');
  if (n.token_file && url.protocol === 'http:' && !loopback)
    throw invalidArgument(`${at('notify.token_file')} needs an https:// url (or a loopback one): the token would travel in clear`);
  if (url.username && url.protocol === 'http:' && !loopback)
    throw invalidArgument(`${at('notify.url')}: a password needs an https:// url (or a loopback one): it would travel in clear`);
  return {
    url: url.href,
    timeoutMs: parseDuration(n.timeout ?? '10s', at('notify.timeout')),
    headers: n.headers ?? {},
    tokenFile: n.token_file,
    ca: n.ca,
    queueSize: n.queue_size ?? 1000,
    retryBackoffMaxMs: parseDuration(n.retry_backoff_max ?? '1m', at('notify.retry_backoff_max')),
  };
}

function gitSource(g: Raw, at: (key: string) => string): GitSourceConfig {
  const dir = (g.path ?? '').replace(/\/$/, '');
  if (dir !== '' && (path.posix.isAbsolute(dir) || path.posix.normalize(dir) !== dir || dir.split('/').includes('..'))) {
    throw invalidArgument(`${at('source.git.path')}: "${dir}" must be a relative, normalised directory inside the repository (like devices)`);
  }
  const v = g.verify;
  if (v?.mode === 'ssh' && !v.allowed_signers) throw invalidArgument(`${at('source.git.verify.allowed_signers')} is required with mode = "ssh"`);
  if (v?.mode === 'gpg' && !v.keyring) throw invalidArgument(`${at('source.git.verify.keyring')} is required with mode = "gpg"`);
  return {
    url: g.url,
    ref: g.ref ?? 'main',
    path: dir,
    intervalMs: parseDuration(g.interval ?? '1m', at('source.git.interval')),
    sshKey: g.ssh_key,
    knownHosts: g.known_hosts,
    tokenFile: g.token_file,
    allowRewind: g.allow_rewind ?? false,
    verify: v && (v.mode === 'ssh' ? { mode: 'ssh', allowedSigners: v.allowed_signers } : { mode: 'gpg', keyring: v.keyring }),
  };
}

/** An absolute, normalised path inside a container, not `/` itself. */
function containerPath(value: string, what: string): string {
  if (!path.posix.isAbsolute(value) || path.posix.normalize(value) !== value || value === '/') {
    throw invalidArgument(`${what}: "${value}" must be an absolute, normalised path of a file (like /run/berth/lock)`);
  }
  return value;
}

/** Defaults, as if the config file were empty. */
export function defaultConfig(overrides: Raw = {}): Config {
  return configFromObject(overrides);
}

/**
 * Load the config file. A missing file means defaults; a file that is not valid TOML is an
 * InvalidArgument error naming the file, line and column.
 */
export async function loadConfig(path: string, overrides: Raw = {}): Promise<Config> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (err: any) {
    if (err?.code === 'ENOENT') return configFromObject(overrides, path);
    throw invalidArgument(`${path}: cannot read config: ${err.message}`, { cause: err, place: { file: path } });
  }
  let parsed: Raw;
  try {
    parsed = TOML.parse(text) as Raw;
  } catch (err: any) {
    const line = typeof err.line === 'number' ? err.line + 1 : undefined;
    const col = typeof err.col === 'number' ? err.col + 1 : undefined;
    throw invalidArgument(`${path}:${line ?? '?'}:${col ?? '?'}: invalid TOML: ${String(err.message).split('\n')[0]}`, {
      cause: err,
      place: { file: path, line, col },
    });
  }
  // TOML tables come back with symbol-keyed metadata; a JSON round trip gives plain objects for the schema.
  return configFromObject({ ...JSON.parse(JSON.stringify(parsed)), ...overrides }, path);
}
