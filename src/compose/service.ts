/**
 * One Compose service → the spec of one berth Container, with Compose's meanings: `entrypoint`
 * replaces the image's Entrypoint (berth `command`), `command` its Cmd (berth `args`); no `restart`
 * means `no` (berth `Never`); `environment` wins over `env_file`; sizes are powers of 1024. A key
 * berth cannot honour is a problem at that key, never dropped in silence: what the user asked for
 * either happens or the set is refused.
 */
import { parse as parseDotenv } from 'dotenv';
import { isAbsolute, resolve } from 'node:path';
import { parse as shellWords } from 'shell-quote';
import { BerthError } from '../errors.ts';
import type { ComposePath } from './interpolate-tree.ts';
import type { Lookup } from './interpolate.ts';
import type { Origin } from './origins.ts';
import { serviceNetworking } from './networks.ts';
import { berthSize, composeBytes, parseShortVolume } from './units.ts';

export interface ServiceContext {
  /** The Compose file's directory (absolute): relative bind sources and env files are under it. */
  dir: string;
  /** The variables interpolation used (the environment, then `.env`). */
  env: Lookup;
  /** Each `env_file` read, by absolute path: its text, or why it could not be read. */
  envFiles: ReadonlyMap<string, string | Error>;
  /** The berth name of a service that becomes a Container; undefined if there is none. */
  containerName(service: string): string | undefined;
  /** Whether a service of the file has a healthcheck of its own. */
  hasHealthcheck(service: string): boolean;
  /** The berth name of a top-level volume; undefined if the file does not declare it. */
  volumeName(volume: string): string | undefined;
  /** The berth name of a Compose network (`default` included); undefined if the file does not declare it. */
  networkName(network: string): string | undefined;
  /** The service's own name as another name on its networks, when its container is named otherwise. */
  alias?: string;
  /** The name of the Image document for a reference. */
  imageName(ref: string): string;
  problem(from: ComposePath, message: string, key?: boolean): void;
  note(from: ComposePath, message: string): void;
}

type Json = Record<string, any>;

/** Service keys berth maps (or checks and accepts); any other key is a problem. */
const MAPPED = new Set([
  'image',
  'environment',
  'env_file',
  'command',
  'entrypoint',
  'working_dir',
  'user',
  'restart',
  'depends_on',
  'healthcheck',
  'volumes',
  'tmpfs',
  'devices',
  'device_cgroup_rules',
  'cap_add',
  'cap_drop',
  'privileged',
  'init',
  'hostname',
  'extra_hosts',
  'dns',
  'sysctls',
  'ulimits',
  'shm_size',
  'labels',
  'stop_signal',
  'stop_grace_period',
  'mem_limit',
  'deploy',
  'pids_limit',
  'cpus',
  'read_only',
  'group_add',
  'network_mode',
  'platform',
  'pull_policy',
  'container_name',
  'profiles',
  'expose',
  'tty',
  'stdin_open',
  'scale',
  'ports',
  'networks',
]);

/** Why berth cannot honour a key, where there is more to say than that it cannot. */
const LINKS = 'containers on one network resolve each other by name: list the network under networks:, with aliases: for other names';
const WHY: Record<string, string> = {
  build: 'berth runs images, it does not build them: build and push the image (or import it), then remove build:',
  links: LINKS,
  external_links: LINKS,
  mac_address: 'berth leaves the MAC address to netavark',
  dns_search: "berth sets name servers (dns) only; the host's search domains are kept",
  dns_opt: "berth sets name servers (dns) only; the host's resolver options are kept",
  secrets: 'berth has no secrets yet: use a bind mount of a file (volumes:)',
  configs: 'berth has no configs yet: use a bind mount of a file (volumes:)',
  logging: "berth keeps each container's log itself (rotated by the [runtime] log_max_size and log_max_files settings)",
  extends: 'berth reads one Compose file: write the service out in full',
};

export function convertService(service: string, svc: Json, at: ComposePath, ctx: ServiceContext): { spec: Json; origins: Origin[] } | undefined {
  const origins: Origin[] = [];
  let ok = true;
  const problem = (key: ComposePath, message: string, onKey = false) => {
    ok = false;
    ctx.problem([...at, ...key], message, onKey);
  };
  const from = (path: (string | number)[], key: ComposePath, onKey = false) => origins.push({ path: ['spec', ...path], from: [...at, ...key], key: onKey });
  const where = (key: ComposePath) => [`services.${service}`, ...key.map((k) => (typeof k === 'number' ? `[${k}]` : `.${k}`))].join('').replace(/\.\[/g, '[');
  const guard = <T>(key: ComposePath, fn: () => T): T | undefined => {
    try {
      return fn();
    } catch (err) {
      if (!(err instanceof BerthError)) throw err;
      problem(key, `${where(key)}: ${err.message}`);
      return undefined;
    }
  };

  for (const key of Object.keys(svc)) {
    if (key.startsWith('x-') || MAPPED.has(key)) continue;
    problem([key], `${where([key])}: berth cannot honour "${key}"${WHY[key] ? `: ${WHY[key]}` : ''}`, true);
  }
  if (svc.stdin_open === true)
    problem(['stdin_open'], `${where(['stdin_open'])}: berth containers have no standard input; remove it (berth exec -i gives one to a command)`);
  if (svc.scale !== undefined && svc.scale !== 1) problem(['scale'], `${where(['scale'])}: berth runs one container per service`);
  if (svc.expose !== undefined) ctx.note([...at, 'expose'], `${where(['expose'])}: ignored: containers on one network reach each other's every port`);

  const spec: Json = {};
  if (svc.image === undefined) problem([], `services.${service}: no image: berth runs images, it does not build them`, true);
  else {
    spec.image = ctx.imageName(svc.image);
    from(['image'], ['image']);
  }

  // entrypoint → the image's Entrypoint (berth command); command → its Cmd (berth args).
  for (const [key, field] of [
    ['entrypoint', 'command'],
    ['command', 'args'],
  ] as const) {
    if (svc[key] === undefined || svc[key] === null) continue;
    const words = typeof svc[key] === 'string' ? guard([key], () => splitWords(svc[key])) : svc[key].map(String);
    if (words === undefined) continue;
    spec[field] = words;
    from([field], [key]);
    if (Array.isArray(svc[key])) words.forEach((_: string, i: number) => from([field, i], [key, i]));
  }

  const env = environment(svc, ctx, problem, from, where);
  if (Object.keys(env).length > 0) spec.env = env;
  if (svc.working_dir !== undefined) {
    spec.workingDir = svc.working_dir;
    from(['workingDir'], ['working_dir']);
  }
  if (svc.user !== undefined) {
    spec.user = String(svc.user);
    from(['user'], ['user']);
  }

  const restart = restartPolicy(svc, problem, where);
  if (restart !== undefined) {
    spec.restartPolicy = restart.policy;
    from(['restartPolicy'], restart.from);
    if (svc.restart === 'unless-stopped')
      ctx.note([...at, 'restart'], `${where(['restart'])}: unless-stopped is Always in berth (a container stays stopped only when it leaves the manifests)`);
  }

  const net = serviceNetworking(svc, ctx.networkName, ctx.alias, problem, where);
  if (net.network !== undefined) spec.network = net.network;
  if (net.networks !== undefined) spec.networks = net.networks;
  if (net.ports !== undefined) spec.ports = net.ports;
  for (const o of net.origins) from(o.path.slice(1), o.from);

  const deps = dependsOn(service, svc, at, ctx, problem, where);
  if (deps.length > 0) {
    spec.dependsOn = deps.map((d) => (d.healthy ? { name: d.name, condition: 'Healthy' } : d.name));
    deps.forEach((d, i) => from(['dependsOn', i], d.from));
  }

  const mounts = volumeMounts(svc, ctx, problem, from, where, guard);
  if (mounts.length > 0) spec.mounts = mounts;

  if (svc.devices !== undefined) {
    spec.devices = svc.devices.map((d: string | Json) =>
      typeof d === 'string' ? d : { path: d.source, ...(d.target ? { target: d.target } : {}), ...(d.permissions ? { permissions: d.permissions } : {}) },
    );
    svc.devices.forEach((_: unknown, i: number) => from(['devices', i], ['devices', i]));
  }
  for (const [key, field] of [
    ['device_cgroup_rules', 'deviceCgroupRules'],
    ['cap_add', 'capAdd'],
    ['cap_drop', 'capDrop'],
    ['group_add', 'groupAdd'],
  ] as const) {
    if (svc[key] === undefined) continue;
    spec[field] = [...svc[key]];
    svc[key].forEach((_: unknown, i: number) => from([field, i], [key, i]));
  }
  for (const [key, field] of [
    ['privileged', 'privileged'],
    ['init', 'init'],
    ['read_only', 'readOnlyRootfs'],
    ['tty', 'tty'],
  ] as const) {
    if (svc[key] !== true) continue;
    spec[field] = true;
    from([field], [key]);
  }
  if (svc.hostname !== undefined) {
    spec.hostname = svc.hostname;
    from(['hostname'], ['hostname']);
  }
  if (svc.extra_hosts !== undefined) {
    const hosts: string[] = [];
    if (Array.isArray(svc.extra_hosts)) {
      svc.extra_hosts.forEach((h: string, i: number) => {
        from(['extraHosts', hosts.length], ['extra_hosts', i]);
        hosts.push(h);
      });
    } else {
      for (const [host, ips] of Object.entries(svc.extra_hosts)) {
        for (const ip of ([] as unknown[]).concat(ips)) {
          from(['extraHosts', hosts.length], ['extra_hosts', host]);
          hosts.push(`${host}:${String(ip)}`);
        }
      }
    }
    spec.extraHosts = hosts;
  }
  if (svc.dns !== undefined) {
    spec.dns = ([] as string[]).concat(svc.dns);
    if (Array.isArray(svc.dns)) svc.dns.forEach((_: unknown, i: number) => from(['dns', i], ['dns', i]));
    else from(['dns', 0], ['dns']);
  }
  for (const [key, field] of [
    ['sysctls', 'sysctls'],
    ['labels', 'labels'],
  ] as const) {
    if (svc[key] === undefined) continue;
    spec[field] = listOrDict(svc[key], (name, i) => {
      from([field, name], [key, i ?? name]);
      from([field, name], [key, i ?? name], true);
    });
    if (field === 'labels') for (const k of Object.keys(spec.labels)) spec.labels[k] = String(spec.labels[k] ?? '');
  }
  if (svc.ulimits !== undefined) {
    spec.ulimits = svc.ulimits;
    for (const k of Object.keys(svc.ulimits)) {
      from(['ulimits', k], ['ulimits', k]);
      from(['ulimits', k], ['ulimits', k], true);
    }
  }
  if (svc.shm_size !== undefined) {
    const bytes = guard(['shm_size'], () => composeBytes(svc.shm_size));
    if (bytes !== undefined) {
      spec.shmSize = berthSize(bytes);
      from(['shmSize'], ['shm_size']);
    }
  }

  const resources = limits(svc, problem, from, where, guard);
  if (Object.keys(resources).length > 0) spec.resources = resources;

  const health = healthcheck(svc, problem, from, where);
  if (health) spec.healthcheck = health;
  if (svc.stop_signal !== undefined) {
    spec.stopSignal = svc.stop_signal;
    from(['stopSignal'], ['stop_signal']);
  }
  if (svc.stop_grace_period !== undefined) {
    spec.stopGracePeriod = svc.stop_grace_period;
    from(['stopGracePeriod'], ['stop_grace_period']);
  }
  return ok ? { spec, origins } : undefined;
}

type Problem = (key: ComposePath, message: string, onKey?: boolean) => void;
type From = (path: (string | number)[], key: ComposePath, onKey?: boolean) => void;
type Where = (key: ComposePath) => string;
type Guard = <T>(key: ComposePath, fn: () => T) => T | undefined;

/**
 * Words of a command written as one string, split as Compose splits it (shell words: quotes and
 * backslashes, no variables, no globbing). An operator (`&&`, `|`, `;`, `>`) needs a shell, which
 * Compose does not run either: it is refused rather than passed on as a word.
 */
export function splitWords(command: string): string[] {
  const words: string[] = [];
  for (const w of shellWords(command, (name) => `$${name}`)) {
    if (typeof w === 'string') words.push(w);
    else if ('op' in w && w.op === 'glob') words.push(w.pattern);
    else if ('comment' in w) throw new BerthError('InvalidArgument', `"#${w.comment}" reads as a shell comment: quote it, or write the command as a list`);
    else throw new BerthError('InvalidArgument', `"${'op' in w ? w.op : '?'}" needs a shell: write [/bin/sh, -c, "…"] as a list`);
  }
  return words;
}

/** `K=V` lines or a map into one map; `onEntry(name, index)` says where each came from (index: list form). */
function listOrDict(v: string[] | Json, onEntry: (name: string, index?: number) => void): Json {
  const out: Json = {};
  if (Array.isArray(v)) {
    v.forEach((line, i) => {
      const eq = String(line).indexOf('=');
      const name = eq < 0 ? String(line) : String(line).slice(0, eq);
      out[name] = eq < 0 ? null : String(line).slice(eq + 1);
      onEntry(name, i);
    });
  } else {
    for (const [k, val] of Object.entries(v)) {
      out[k] = val;
      onEntry(k);
    }
  }
  return out;
}

function environment(svc: Json, ctx: ServiceContext, problem: Problem, from: From, where: Where): Record<string, string> {
  const env: Record<string, string> = {};
  if (svc.env_file !== undefined) {
    const files: Array<string | Json> = ([] as Array<string | Json>).concat(svc.env_file);
    files.forEach((f, i) => {
      const at: ComposePath = Array.isArray(svc.env_file) ? ['env_file', i] : ['env_file'];
      const { path, required = true, format } = typeof f === 'string' ? { path: f } : (f as { path: string; required?: boolean; format?: string });
      const text = ctx.envFiles.get(resolve(ctx.dir, path));
      if (format !== undefined && format !== 'raw')
        return problem(at, `${where(at)}: format "${format}" is not one berth reads (leave it out for .env syntax, or raw)`);
      if (text === undefined || text instanceof Error) {
        if (required) problem(at, `${where(at)}: cannot read ${path}: ${text?.message ?? 'not read'}`);
        return;
      }
      const vars = format === 'raw' ? rawEnv(text) : parseDotenv(text);
      for (const [k, v] of Object.entries(vars)) {
        env[k] = v;
        from(['env', k], at);
        from(['env', k], at, true);
      }
    });
  }
  if (svc.environment !== undefined) {
    const vars = listOrDict(svc.environment, (name, i) => {
      from(['env', name], ['environment', i ?? name]);
      from(['env', name], ['environment', i ?? name], true);
    });
    for (const [k, v] of Object.entries(vars)) {
      // `- NAME` or `NAME:` with no value: the variable as berth's environment (or .env) has it, else unset.
      const value = v === null || v === undefined ? ctx.env(k) : String(v);
      if (value === undefined) delete env[k];
      else env[k] = value;
    }
  }
  return env;
}

/** `format: raw`: each `NAME=value` line as it is, no quotes or escapes. */
function rawEnv(text: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const line of text.split(/\r?\n/)) {
    if (line.trim() === '' || line.trimStart().startsWith('#')) continue;
    const eq = line.indexOf('=');
    if (eq > 0) out[line.slice(0, eq).trim()] = line.slice(eq + 1);
  }
  return out;
}

function restartPolicy(svc: Json, problem: Problem, where: Where): { policy: string; from: ComposePath } | undefined {
  const fromDeploy = svc.deploy?.restart_policy?.condition as string | undefined;
  let policy: string | undefined;
  if (svc.restart !== undefined) {
    const r = String(svc.restart);
    policy = { no: 'Never', always: 'Always', 'unless-stopped': 'Always', 'on-failure': 'OnFailure' }[r];
    if (/^on-failure:\d+$/.test(r)) {
      problem(
        ['restart'],
        `${where(['restart'])}: berth cannot limit restarts to ${r.split(':')[1]}: it restarts on failure with back-off (10s doubling to 5m) for as long as it fails; write on-failure`,
      );
      return undefined;
    }
    if (policy === undefined) {
      problem(['restart'], `${where(['restart'])}: "${r}" is not one of no, always, on-failure, unless-stopped`);
      return undefined;
    }
  }
  if (fromDeploy !== undefined) {
    const p = { none: 'Never', 'on-failure': 'OnFailure', any: 'Always' }[fromDeploy];
    const at = ['deploy', 'restart_policy', 'condition'];
    if (p === undefined) problem(at, `${where(at)}: "${fromDeploy}" is not one of none, on-failure, any`);
    else if (policy !== undefined && p !== policy) problem(at, `${where(at)}: says ${fromDeploy}, but restart says ${svc.restart}: keep one`);
    else return { policy: p, from: at };
    return undefined;
  }
  // Compose's default is `no`, berth's Always: written out so the container behaves as in Compose.
  return { policy: policy ?? 'Never', from: svc.restart === undefined ? [] : ['restart'] };
}

function dependsOn(
  service: string,
  svc: Json,
  at: ComposePath,
  ctx: ServiceContext,
  problem: Problem,
  where: Where,
): Array<{ name: string; healthy: boolean; from: ComposePath }> {
  const out: Array<{ name: string; healthy: boolean; from: ComposePath }> = [];
  if (svc.depends_on === undefined) return out;
  const entries: Array<[string, Json, ComposePath]> = Array.isArray(svc.depends_on)
    ? svc.depends_on.map((d: string, i: number) => [d, {}, ['depends_on', i]])
    : Object.entries(svc.depends_on).map(([d, v]) => [d, v as Json, ['depends_on', d]]);
  for (const [dep, opts, key] of entries) {
    const name = ctx.containerName(dep);
    if (name === undefined) {
      if (opts.required === false) ctx.note([...at, ...key], `${where(key)}: ${dep} is not a service here (required: false): left out`);
      else problem(key, `${where(key)}: no service "${dep}" in this file (or it is left out by its profiles)`, !Array.isArray(svc.depends_on));
      continue;
    }
    if (opts.restart === true) {
      problem([...key, 'restart'], `${where([...key, 'restart'])}: berth does not restart ${service} when ${dep} restarts; remove it`);
      continue;
    }
    const condition = opts.condition ?? 'service_started';
    if (condition === 'service_healthy' && !ctx.hasHealthcheck(dep)) {
      ctx.note(
        [...at, ...key, 'condition'],
        `${where([...key, 'condition'])}: ${dep} has no healthcheck here: ${service} waits for its image's HEALTHCHECK to pass, and without one it never starts`,
      );
    } else if (condition === 'service_completed_successfully') {
      ctx.note(
        [...at, ...key, 'condition'],
        `${where([...key, 'condition'])}: berth starts ${service} once ${dep} is running or has exited 0; it does not wait for ${dep} to finish`,
      );
    }
    out.push({ name, healthy: condition === 'service_healthy', from: key });
  }
  return out;
}

function volumeMounts(svc: Json, ctx: ServiceContext, problem: Problem, from: From, where: Where, guard: Guard): Json[] {
  const mounts: Json[] = [];
  const bindSource = (src: string) => (src.startsWith('~') ? `${ctx.env('HOME') ?? '~'}${src.slice(1)}` : isAbsolute(src) ? src : resolve(ctx.dir, src));
  const named = (name: string, key: ComposePath): string | undefined => {
    const v = ctx.volumeName(name);
    if (v === undefined) problem(key, `${where(key)}: volume "${name}" is not declared under the top-level volumes: key`);
    return v;
  };
  const add = (m: Json, key: ComposePath) => {
    from(['mounts', mounts.length], key);
    for (const f of Object.keys(m)) from(['mounts', mounts.length, f], key);
    mounts.push(m);
  };
  (svc.volumes ?? []).forEach((v: string | Json, i: number) => {
    const key = ['volumes', i];
    if (typeof v === 'string') {
      const short = guard(key, () => parseShortVolume(v));
      if (!short) return;
      const readOnly = short.modes.includes('ro');
      const odd = short.modes.filter((m) => !['ro', 'rw', 'cached', 'delegated', 'consistent'].includes(m));
      if (odd.length > 0)
        return problem(key, `${where(key)}: berth cannot honour the mode${odd.length > 1 ? 's' : ''} ${odd.join(', ')} (it mounts ro or rw, private)`);
      if (short.kind === 'anonymous')
        return problem(key, `${where(key)}: berth has no anonymous volumes: name one (data:${short.target}) and declare it under volumes:`);
      if (short.kind === 'bind') return add({ type: 'bind', source: bindSource(short.source), target: short.target, ...(readOnly ? { readOnly } : {}) }, key);
      const name = named(short.name, key);
      if (name !== undefined) add({ type: 'volume', name, target: short.target, ...(readOnly ? { readOnly } : {}) }, key);
      return;
    }
    const extra = Object.keys(v).filter((k) => !['type', 'source', 'target', 'read_only', 'tmpfs', 'consistency'].includes(k) && !k.startsWith('x-'));
    const tmpfsExtra = Object.keys(v.tmpfs ?? {}).filter((k) => k !== 'size');
    if (extra.length > 0 || tmpfsExtra.length > 0) {
      const k = extra[0] ?? 'tmpfs';
      return problem([...key, k], `${where([...key, k])}: berth cannot honour ${[...extra, ...tmpfsExtra.map((t) => `tmpfs.${t}`)].join(', ')}`, true);
    }
    const readOnly = v.read_only === true ? { readOnly: true } : {};
    if (typeof v.target !== 'string') return problem(key, `${where(key)}: no target: where in the container is it mounted?`);
    if (v.type === 'bind' && typeof v.source !== 'string') return problem(key, `${where(key)}: no source: which host path is mounted?`);
    if (v.type === 'bind') add({ type: 'bind', source: bindSource(v.source), target: v.target, ...readOnly }, key);
    else if (v.type === 'volume') {
      if (v.source === undefined) return problem(key, `${where(key)}: berth has no anonymous volumes: give it a source and declare it under volumes:`);
      const name = named(v.source, [...key, 'source']);
      if (name !== undefined) add({ type: 'volume', name, target: v.target, ...readOnly }, key);
    } else if (v.type === 'tmpfs') {
      const size = v.tmpfs?.size === undefined ? undefined : guard([...key, 'tmpfs', 'size'], () => composeBytes(v.tmpfs.size));
      add({ type: 'tmpfs', target: v.target, ...(size !== undefined ? { size: berthSize(size) } : {}) }, key);
    } else problem([...key, 'type'], `${where([...key, 'type'])}: berth cannot mount a ${v.type} (only volume, bind and tmpfs)`);
  });
  const tmpfs: string[] = svc.tmpfs === undefined ? [] : ([] as string[]).concat(svc.tmpfs);
  tmpfs.forEach((t, i) => {
    const key = Array.isArray(svc.tmpfs) ? ['tmpfs', i] : ['tmpfs'];
    const [target, options] = [t.split(':')[0]!, t.split(':').slice(1).join(':')];
    const opts = options ? options.split(',') : [];
    const odd = opts.filter((o) => !o.startsWith('size='));
    if (odd.length > 0) return problem(key, `${where(key)}: berth cannot honour the tmpfs option${odd.length > 1 ? 's' : ''} ${odd.join(', ')} (only size=)`);
    const sizeOpt = opts.find((o) => o.startsWith('size='));
    const size = sizeOpt === undefined ? undefined : guard(key, () => composeBytes(sizeOpt.slice(5)));
    add({ type: 'tmpfs', target, ...(size !== undefined ? { size: berthSize(size) } : {}) }, key);
  });
  return mounts;
}

function limits(svc: Json, problem: Problem, from: From, where: Where, guard: Guard): Json {
  const resources: Json = {};
  const deploy = svc.deploy ?? {};
  for (const k of Object.keys(deploy)) {
    if (k.startsWith('x-') || ['resources', 'restart_policy', 'replicas', 'mode'].includes(k)) continue;
    problem(['deploy', k], `${where(['deploy', k])}: berth cannot honour "${k}" (a swarm setting: berth runs one container per service on this device)`, true);
  }
  if (deploy.replicas !== undefined && deploy.replicas !== 1)
    problem(['deploy', 'replicas'], `${where(['deploy', 'replicas'])}: berth runs one container per service`);
  if (deploy.mode !== undefined && deploy.mode !== 'replicated')
    problem(['deploy', 'mode'], `${where(['deploy', 'mode'])}: berth cannot honour mode ${deploy.mode} (a swarm setting)`);
  for (const k of Object.keys(deploy.restart_policy ?? {})) {
    if (k !== 'condition' && !k.startsWith('x-'))
      problem(
        ['deploy', 'restart_policy', k],
        `${where(['deploy', 'restart_policy', k])}: berth cannot honour "${k}": it restarts with its own back-off (10s doubling to 5m)`,
        true,
      );
  }
  for (const k of Object.keys(deploy.resources ?? {})) {
    if (k !== 'limits' && !k.startsWith('x-'))
      problem(['deploy', 'resources', k], `${where(['deploy', 'resources', k])}: berth cannot honour "${k}": it sets limits only`, true);
  }
  const lim = deploy.resources?.limits ?? {};
  for (const k of Object.keys(lim)) {
    if (!['cpus', 'memory', 'pids'].includes(k) && !k.startsWith('x-'))
      problem(
        ['deploy', 'resources', 'limits', k],
        `${where(['deploy', 'resources', 'limits', k])}: berth cannot honour "${k}" (it limits cpus, memory and pids)`,
        true,
      );
  }
  /** One limit that two keys can set: both is a problem unless they agree. */
  const one = (field: string, a: [ComposePath, unknown], b: [ComposePath, unknown], read: (v: any) => number | undefined, write: (n: number) => unknown) => {
    const [ka, va] = a;
    const [kb, vb] = b;
    const na = va === undefined ? undefined : guard(ka, () => read(va));
    const nb = vb === undefined ? undefined : guard(kb, () => read(vb));
    if (na !== undefined && nb !== undefined && na !== nb) return problem(kb, `${where(kb)}: ${String(vb)} differs from ${where(ka)}: ${String(va)}; keep one`);
    const n = na ?? nb;
    if (n === undefined) return;
    resources[field] = write(n);
    from(['resources', field], na !== undefined ? ka : kb);
  };
  one('memory', [['mem_limit'], svc.mem_limit], [['deploy', 'resources', 'limits', 'memory'], lim.memory], composeBytes, berthSize);
  one('cpus', [['cpus'], svc.cpus], [['deploy', 'resources', 'limits', 'cpus'], lim.cpus], Number, (n) => n);
  one('pids', [['pids_limit'], svc.pids_limit], [['deploy', 'resources', 'limits', 'pids'], lim.pids], Number, (n) => n);
  if (resources.pids !== undefined && resources.pids <= 0) {
    problem(
      ['pids_limit'],
      `${where(['pids_limit'])}: berth cannot lift the pids limit (${resources.pids}); set a number of processes (berth's default is 2048)`,
    );
  }
  return resources;
}

function healthcheck(svc: Json, problem: Problem, from: From, where: Where): Json | undefined {
  const h = svc.healthcheck;
  if (h === undefined) return undefined;
  const at = (k: string) => ['healthcheck', k];
  if (h.disable === true || (Array.isArray(h.test) && h.test[0] === 'NONE')) {
    problem(
      h.disable === true ? at('disable') : at('test'),
      `${where(['healthcheck'])}: berth cannot switch off an image's HEALTHCHECK yet: remove the healthcheck (the image's check, if it has one, then runs)`,
    );
    return undefined;
  }
  for (const k of Object.keys(h)) {
    if (!['test', 'interval', 'timeout', 'retries', 'start_period', 'disable'].includes(k) && !k.startsWith('x-'))
      problem(at(k), `${where(at(k))}: berth cannot honour "${k}"`, true);
  }
  if (h.test === undefined) {
    problem(['healthcheck'], `${where(['healthcheck'])}: no test: berth needs the command to run (it does not merge with the image's HEALTHCHECK)`);
    return undefined;
  }
  let exec: string[];
  if (typeof h.test === 'string') exec = ['/bin/sh', '-c', h.test];
  else if (h.test[0] === 'CMD') exec = h.test.slice(1);
  else if (h.test[0] === 'CMD-SHELL') exec = ['/bin/sh', '-c', h.test.slice(1).join(' ')];
  else {
    problem(at('test'), `${where(at('test'))}: a list test starts with CMD, CMD-SHELL or NONE`);
    return undefined;
  }
  const out: Json = { exec };
  from(['healthcheck', 'exec'], at('test'));
  for (const [k, field] of [
    ['interval', 'interval'],
    ['timeout', 'timeout'],
    ['retries', 'retries'],
    ['start_period', 'startPeriod'],
  ] as const) {
    if (h[k] === undefined) continue;
    out[field] = h[k];
    from(['healthcheck', field], at(k));
  }
  return out;
}
