/**
 * A validated, interpolated Compose file → berth documents: each service a Container, each distinct
 * image an Image, each top-level volume a Volume. Names become DNS labels as berth's are
 * (`mosquitto_data` → `mosquitto-data`, said in a note); services left out by their `profiles`
 * (unless COMPOSE_PROFILES names one) become nothing, as in Compose. Pure: what is on disk
 * (`env_file`s) has been read by the caller.
 */
import { API_VERSION } from '../manifest/types.ts';
import type { ComposePath } from './interpolate-tree.ts';
import type { Lookup } from './interpolate.ts';
import type { Origin } from './origins.ts';
import { objectMeta } from './meta.ts';
import { convertNetworks } from './networks.ts';
import { convertService, type ServiceContext } from './service.ts';

export interface ComposeInput {
  /** The Compose file's directory, absolute. */
  dir: string;
  /** The file as JSON, interpolated and schema-valid. */
  compose: Record<string, any>;
  env: Lookup;
  envFiles: ReadonlyMap<string, string | Error>;
}

/** One berth document, with where its parts came from in the Compose file. */
export interface Draft {
  value: Record<string, any>;
  origins: Origin[];
  /** The Compose node the document as a whole stands for (a service's key, an image's value…). */
  at: ComposePath;
  /** Said above the document by `berth convert`. */
  notes: string[];
}

export interface ComposeFinding {
  at: ComposePath;
  /** At the key rather than the value. */
  key: boolean;
  message: string;
}

export interface Converted {
  drafts: Draft[];
  problems: ComposeFinding[];
  notes: ComposeFinding[];
}

const TOP_LEVEL_WHY: Record<string, string> = {
  secrets: 'berth has no secrets yet: bind-mount the file instead',
  configs: 'berth has no configs yet: bind-mount the file instead',
  include: 'berth reads one Compose file per project: write the services out in this one',
  models: 'berth does not run models',
};

/** A Compose name as a berth name (a DNS label): lower case, `_` and `.` as `-`. */
export function berthName(name: string): string {
  return (
    name
      .toLowerCase()
      .replace(/[^a-z0-9-]+/g, '-')
      .replace(/^-+|-+$/g, '')
      .slice(0, 63)
      .replace(/-+$/, '') || name
  );
}

export function convertCompose(input: ComposeInput): Converted {
  const { compose } = input;
  const out: Converted = { drafts: [], problems: [], notes: [] };
  const problem = (at: ComposePath, message: string, key = false) => out.problems.push({ at, key, message });
  const note = (at: ComposePath, message: string, key = false) => out.notes.push({ at, key, message });

  for (const key of Object.keys(compose)) {
    if (TOP_LEVEL_WHY[key]) problem([key], `${key}: berth cannot honour top-level "${key}": ${TOP_LEVEL_WHY[key]}`, true);
  }

  // Names first: depends_on and volume mounts refer to them before or after their own entry.
  const taken = new Map<string, string>();
  const claim = (kind: string, composeName: string, at: ComposePath): string => {
    const name = berthName(composeName);
    const first = taken.get(`${kind}/${name}`);
    if (first !== undefined)
      problem(at, `${kind} "${composeName}" and "${first}" are both "${name}" as a berth name (lower case, - for _ and .): rename one`, true);
    taken.set(`${kind}/${name}`, composeName);
    if (name !== composeName) note(at, `${kind} "${composeName}" is named "${name}" in berth (names are DNS labels)`, true);
    return name;
  };

  const volumes = new Map<string, string>();
  for (const [key, v] of Object.entries((compose.volumes ?? {}) as Record<string, any>)) {
    const at = ['volumes', key];
    const spec = v ?? {};
    const name = claim('volume', spec.name ?? key, at);
    volumes.set(key, name);
    for (const k of Object.keys(spec)) {
      if (k.startsWith('x-') || ['name', 'external', 'labels'].includes(k) || (k === 'driver' && spec.driver === 'local')) continue;
      problem([...at, k], `volumes.${key}.${k}: berth cannot honour "${k}": its volumes are directories under <root>/volumes`, true);
    }
    if (spec.external === true) note(at, `volumes.${key}: external: berth uses <root>/volumes/${name}, made if it does not exist`);
    const { metadata, origins } = objectMeta(name, spec.labels, at);
    out.drafts.push({ value: { apiVersion: API_VERSION, kind: 'Volume', metadata }, origins, at, notes: [] });
  }

  const networks = convertNetworks(compose, (name, at) => claim('network', name, at), problem, note);
  for (const n of networks.values()) if (n.doc) out.drafts.push({ ...n.doc, notes: [] });

  const profiles = (input.env('COMPOSE_PROFILES') ?? '')
    .split(',')
    .map((p) => p.trim())
    .filter(Boolean);
  const services = Object.entries((compose.services ?? {}) as Record<string, Record<string, any>>);
  const enabled = services.filter(([key, svc]) => {
    const on = svc.profiles === undefined || svc.profiles.some((p: string) => profiles.includes(p) || profiles.includes('*'));
    if (!on) note(['services', key, 'profiles'], `services.${key}: left out: its profiles (${svc.profiles.join(', ')}) are not in COMPOSE_PROFILES`);
    return on;
  });
  const containers = new Map<string, string>();
  for (const [key, svc] of enabled) containers.set(key, claim('container', svc.container_name ?? key, ['services', key]));

  const images = new Map<string, { name: string; at: ComposePath; pullPolicy?: string; platform?: string; policyAt?: ComposePath }>();
  const imageName = (ref: string, at: ComposePath): string => {
    let image = images.get(ref);
    if (!image) {
      const base = berthName(ref.replace(/@.*$/, '').split('/').pop()!.replace(/:.*$/, ''));
      let name = base;
      for (let n = 2; [...images.values()].some((i) => i.name === name); n++) name = `${base}-${n}`;
      image = { name, at };
      images.set(ref, image);
    }
    return image.name;
  };

  for (const [key, svc] of enabled) {
    const at = ['services', key];
    const ctx: ServiceContext = {
      dir: input.dir,
      env: input.env,
      envFiles: input.envFiles,
      containerName: (s) => containers.get(s),
      hasHealthcheck: (s) => compose.services?.[s]?.healthcheck !== undefined,
      volumeName: (v) => volumes.get(v),
      networkName: (n) => networks.get(n)?.name,
      ...(containers.get(key) !== berthName(key) ? { alias: berthName(key) } : {}),
      imageName: (ref) => imageName(ref, [...at, 'image']),
      problem,
      note,
    };
    const converted = convertService(key, svc, at, ctx);
    if (svc.image !== undefined) imageOptions(images.get(svc.image)!, svc, at, problem);
    if (!converted) continue;
    const value = { apiVersion: API_VERSION, kind: 'Container', metadata: { name: containers.get(key)! }, spec: converted.spec };
    const origins: Origin[] = [{ path: ['metadata', 'name'], from: at, key: true }, ...converted.origins];
    out.drafts.push({ value, origins, at, notes: [] });
  }

  const imageDrafts: Draft[] = [...images.entries()].map(([ref, image]) => {
    const spec: Record<string, any> = { ref };
    if (image.pullPolicy !== undefined) spec.pullPolicy = image.pullPolicy;
    if (image.platform !== undefined) spec.platform = image.platform;
    const origins: Origin[] = [
      { path: ['metadata', 'name'], from: image.at },
      { path: ['spec', 'ref'], from: image.at },
    ];
    if (image.policyAt) origins.push({ path: ['spec', 'pullPolicy'], from: image.policyAt });
    return { value: { apiVersion: API_VERSION, kind: 'Image', metadata: { name: image.name }, spec }, origins, at: image.at, notes: [] };
  });
  out.drafts.unshift(...imageDrafts);
  // Each note goes above the document made from where it was found (the nearest enclosing one).
  for (const n of out.notes) {
    const within = (d: Draft) => d.at.length <= n.at.length && d.at.every((p, i) => p === n.at[i]);
    const owner = out.drafts.filter(within).sort((a, b) => b.at.length - a.at.length)[0];
    owner?.notes.push(n.message);
  }
  return out;
}

/** `pull_policy` and `platform` belong to the image: every service that runs it must agree. */
function imageOptions(
  image: { pullPolicy?: string; platform?: string; policyAt?: ComposePath },
  svc: Record<string, any>,
  at: ComposePath,
  problem: (at: ComposePath, message: string, key?: boolean) => void,
): void {
  if (svc.pull_policy !== undefined) {
    const policy = { always: 'Always', missing: 'IfNotPresent', if_not_present: 'IfNotPresent' }[svc.pull_policy as string];
    const key = [...at, 'pull_policy'];
    if (policy === undefined) {
      problem(key, `${at.join('.')}.pull_policy: berth cannot honour "${svc.pull_policy}" (it pulls always or if not present: always, missing)`);
    } else if (image.pullPolicy !== undefined && image.pullPolicy !== policy) {
      problem(key, `${at.join('.')}.pull_policy: another service runs ${svc.image} with another pull_policy: berth has one policy per image`);
    } else [image.pullPolicy, image.policyAt] = [policy, key];
  }
  if (svc.platform !== undefined) {
    if (image.platform !== undefined && image.platform !== svc.platform)
      problem([...at, 'platform'], `${at.join('.')}.platform: another service runs ${svc.image} for ${image.platform}: berth has one platform per image`);
    else image.platform = svc.platform;
  }
}
