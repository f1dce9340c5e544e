/**
 * Loading the user's desired state: a directory tree (or one file) of YAML documents → a validated
 * `DesiredState` with defaults applied, or EVERY problem in the set, each at its file:line:col.
 * A set with any problem yields no state at all: berth never applies half of a broken set.
 *
 * YAML 1.2 with merge keys (`<<: *defaults`) within a document (anchors do not cross `---`).
 * Checks, in order: YAML syntax (including duplicate keys), the JSON Schema (unknown fields, types,
 * enums, sizes and durations), then across documents: duplicate names per kind, image references
 * (a bare word such as `busybox` must name an `Image` document; `busybox:latest` is a reference),
 * `dependsOn` to a missing container or to itself, dependency cycles, volume mounts naming an
 * undeclared `Volume` (an error, unlike Docker: see VolumeSpec), two mounts on one target.
 *
 * Bounded and linear: a set is refused, as a problem naming the file, past `ManifestLimits` (file
 * size, total size, files, documents), and every check costs time in proportion to the input (a
 * 22 MB file once ran for over ten minutes), so a hostile or runaway set cannot wedge the daemon.
 */
import { open, stat } from 'node:fs/promises';
import { Composer, isMap, isScalar, LineCounter, Parser, visit, type Document } from 'yaml';
import { BerthError, formatPlace, invalidArgument, type Place } from '../errors.ts';
import { parseDuration, parseSize } from '../config/units.ts';
import { formatBytes } from '../format-bytes.ts';
import { formatPlatform, normalizeReference, parsePlatform } from '../oci/index.ts';
import { isComposeFile, readCompose, type ComposeDocuments } from '../compose/read.ts';
import { buildContainerOptions } from './container-options.ts';
import { listManifestFiles } from './files.ts';
import { ManifestSetError, sortProblems, type ManifestProblem } from './problems.ts';
import { manifestRevision } from './revision.ts';
import { pinManifestsPath } from './pinned-revision.ts';
import { resolveFleet, type DeviceIdentity } from './fleet.ts';
import { createDocumentValidator, formatDocPath, type DocumentValidator } from './schema.ts';
import { placeAt, placeOfOffset, type DocPath, type SourceDoc } from './source.ts';
import {
  DEFAULT_CONFIRM_AFTER_MS,
  type ContainerDoc,
  type ContainerSpec,
  type DesiredState,
  type HealthcheckSpec,
  type ImageDoc,
  type MountSpec,
  type NetworkDoc,
  type SecretDoc,
  type VolumeDoc,
} from './types.ts';
import { normaliseSecretValue, quotesSecretValue, resolveContainerSecrets, SECRET_VALUE_HINT } from './secret-refs.ts';
import { buildContainerNetworkFields, buildNetworkSpec, resolveContainerNetworks } from '../network/manifest-fields.ts';

export interface ManifestSource {
  /** The path to show in messages. */
  file: string;
  text: string;
  /** A Compose file's berth documents (src/compose), read in place of the text's. */
  compose?: ComposeDocuments;
}

export interface CheckResult {
  /** Present only when there are no problems. */
  state?: DesiredState;
  problems: ManifestProblem[];
  /** The files read, in order. */
  files: string[];
  /** With a device: `Kind/name` → the files that made each object, in the order applied. */
  origins?: Map<string, string[]>;
}

export interface LoadOptions {
  signal?: AbortSignal;
  /** A compiled validator to reuse across loads (the daemon reloads often); compiled if absent. */
  validator?: DocumentValidator;
  /** Record the git revision of the manifests (default true). */
  revision?: boolean;
  /**
   * Accept a set with no documents (default false). An empty set would remove every container, and
   * on an unattended device it is far more often a half-finished checkout or a mount gone missing
   * than a wish (Argo CD's automated sync refuses it the same way unless `allowEmpty`).
   */
  allowEmpty?: boolean;
  /** Bounds on the set (defaults: `DEFAULT_MANIFEST_LIMITS`). */
  limits?: Partial<ManifestLimits>;
  /** The device, for the fleet layout, selectors and `${device.…}` (src/manifest/fleet.ts); absent: every file as written. */
  device?: DeviceIdentity;
}

/** What one load reads at most; past any of these the set is refused with a problem that says which. */
export interface ManifestLimits {
  /** Bytes of one file. */
  fileBytes: number;
  /** Bytes of every file together. */
  totalBytes: number;
  files: number;
  /** YAML documents in every file together. */
  documents: number;
}

/**
 * Kubernetes caps one object at about 1.5 MB; an edge device's whole desired state is a few dozen
 * documents, so these leave room for a hundredfold that and still bound memory and time.
 */
export const DEFAULT_MANIFEST_LIMITS: ManifestLimits = {
  fileBytes: 1.5 * 1024 * 1024,
  totalBytes: 16 * 1024 * 1024,
  files: 1000,
  documents: 1000,
};

/** Loads and validates; throws `ManifestSetError` (InvalidArgument) carrying every problem. */
export async function loadManifests(path: string, opts: LoadOptions = {}): Promise<DesiredState> {
  const result = await checkManifests(path, opts);
  if (!result.state) throw new ManifestSetError(result.problems);
  return result.state;
}

/** Loads and validates, returning the problems instead of throwing (for `berth validate`). */
export async function checkManifests(path: string, opts: LoadOptions = {}): Promise<CheckResult> {
  const pinned = await pinManifestsPath(path); // a fetched git revision is read whole: one commit, even if `current` moves
  path = pinned.path;
  const limits = { ...DEFAULT_MANIFEST_LIMITS, ...opts.limits };
  const files = await listManifestFiles(path, opts.signal);
  const sources: ManifestSource[] = [];
  const unreadable: ManifestProblem[] = [];
  if (files.length > limits.files) {
    const message = `too many manifest files: ${files.length}, the limit is ${limits.files}`;
    return { problems: [{ place: { file: path }, message }], files };
  }
  let total = 0;
  for (const file of files) {
    try {
      const text = await readBounded(file, Math.min(limits.fileBytes, limits.totalBytes - total), opts.signal);
      if (text === undefined) {
        unreadable.push({ place: { file }, message: tooBig(limits, total) });
        break; // past the total, nothing more is read
      }
      total += Buffer.byteLength(text);
      sources.push(isComposeFile(file) ? { file, text, compose: await readCompose(file, text, { signal: opts.signal }) } : { file, text });
    } catch (err) {
      opts.signal?.throwIfAborted();
      unreadable.push({ place: { file }, message: `cannot read: ${(err as Error).message}` });
    }
  }
  const validator = opts.validator ?? (await createDocumentValidator(opts.signal));
  const fleet = opts.device && resolveFleet(path, sources, opts.device);
  if (fleet) unreadable.push(...fleet.problems);
  const result = parseManifestSources(fleet ? fleet.sources : sources, validator, limits);
  if (unreadable.length > 0) return { problems: sortProblems([...unreadable, ...result.problems]), files };
  const s = result.state;
  if (s && !opts.allowEmpty && s.containers.length + s.images.length + s.volumes.length === 0) {
    const message = `no documents: an empty desired state would remove every container; refusing it unless explicitly allowed`;
    return { problems: [{ place: { file: path }, message }], files };
  }
  if (result.state && opts.revision !== false) {
    const revision = pinned.revision ?? (await manifestRevision(path, opts.signal));
    if (revision) result.state.revision = revision;
  }
  return { ...result, files, origins: fleet ? fleet.origins : undefined };
}

/**
 * The contents of `file` if it is a regular file of at most `maxBytes`; undefined if it is bigger.
 * Reads one byte past the limit whatever the size said, in case the file grows meanwhile.
 */
async function readBounded(file: string, maxBytes: number, signal?: AbortSignal): Promise<string | undefined> {
  const st = await stat(file);
  if (!st.isFile()) throw new Error('not a regular file');
  if (st.size > maxBytes) return undefined;
  const fh = await open(file, 'r');
  try {
    const buf = Buffer.allocUnsafe(maxBytes + 1);
    let len = 0;
    for (;;) {
      signal?.throwIfAborted();
      const { bytesRead } = await fh.read(buf, len, buf.length - len, null);
      if (bytesRead === 0) break;
      len += bytesRead;
      if (len > maxBytes) return undefined;
    }
    return buf.toString('utf8', 0, len);
  } finally {
    await fh.close();
  }
}

function tooBig(limits: ManifestLimits, readBefore: number): string {
  if (limits.totalBytes - readBefore < limits.fileBytes) {
    return `the manifests are too big: more than ${formatBytes(limits.totalBytes)} in all, reached at this file`;
  }
  return `file too big: more than ${formatBytes(limits.fileBytes)}, the limit for one manifest file; split it into smaller files`;
}

/** The pure part: sources in, state or problems out. No disk. */
export function parseManifestSources(
  sources: ManifestSource[],
  validate: DocumentValidator,
  limits: ManifestLimits = DEFAULT_MANIFEST_LIMITS,
): Omit<CheckResult, 'files'> {
  const problems: ManifestProblem[] = [];
  const problem = (place: Place, message: string) => problems.push({ place, message });
  const parsed: Parsed[] = [];
  // Every document that names itself, valid or not: a reference to a document that has its own
  // problems is not also reported as dangling, and duplicates are found among all of them.
  const declared: Declared[] = [];
  let documents = 0;

  eachSource: for (const { file, text, compose } of sources) {
    if (Buffer.byteLength(text) > limits.fileBytes) {
      problem({ file }, tooBig(limits, 0));
      continue;
    }
    const lines = compose?.lines ?? new LineCounter();
    problems.push(...(compose?.problems ?? []));
    // Documents one at a time (parseAllDocuments without building them all first), so a file of
    // a million `---` stops at the limit.
    const parser = new Parser(lines.addNewLine);
    const composer = new Composer({ prettyErrors: false, uniqueKeys: false, merge: true });
    for (const doc of compose?.documents ?? composer.compose(parser.parse(text))) {
      if (++documents > limits.documents) {
        problem(placeOfOffset(file, lines, doc.range[0]), `too many documents: the limit is ${limits.documents} in all the manifests`);
        break eachSource;
      }
      const src: SourceDoc = { file, doc, lines };
      const yamlErrors = [...doc.errors, ...doc.warnings];
      for (const e of yamlErrors) problem(placeOfOffset(file, lines, e.pos[0]), yamlMessage(e.message));
      const duplicates = duplicateKeys(doc);
      for (const d of duplicates) {
        problem(placeOfOffset(file, lines, d.offset), `YAML: Map keys must be unique (${d.key} is already at line ${lines.linePos(d.firstOffset).line})`);
      }
      if (yamlErrors.length > 0 || duplicates.length > 0 || doc.contents === null) continue;
      let value: unknown;
      try {
        value = doc.toJS({ maxAliasCount: 100 });
      } catch (err) {
        // e.g. an alias to an anchor in another document, a merge of a non-map, an alias bomb
        const hint = /alias|merge/i.test((err as Error).message) ? ' (an alias can only name an anchor earlier in the same document)' : '';
        problem(placeAt(src, []), `${yamlMessage((err as Error).message)}${hint}`);
        continue;
      }
      if (value === null || value === undefined) continue; // a document of only comments
      if (typeof value !== 'object' || Array.isArray(value)) {
        problem(placeAt(src, []), 'a document must be a map with apiVersion, kind, metadata and spec');
        continue;
      }
      const { kind, metadata } = value as { kind?: unknown; metadata?: { name?: unknown } };
      if (typeof kind === 'string' && typeof metadata?.name === 'string') declared.push({ kind, name: metadata.name, src });
      const findings = validate(value);
      for (const f of findings) {
        // A Secret's value may be a plaintext written by mistake: never quote it back (logs, events).
        const message = kind === 'Secret' && quotesSecretValue(f.path, f.key) ? `${formatDocPath(f.path)}: ${SECRET_VALUE_HINT}` : f.message;
        problem(placeAt(src, f.path, { key: f.key }), message);
      }
      if (findings.length > 0) continue;
      const built = build(value as RawDoc, src, problem);
      if (built) parsed.push(built);
    }
  }

  crossCheck(parsed, declared, problem);
  if (problems.length > 0) return { problems: sortProblems(problems) };

  const state: DesiredState = { containers: [], images: [], volumes: [] };
  for (const p of parsed) {
    if (p.doc.kind === 'Container') state.containers.push(p.doc);
    else if (p.doc.kind === 'Image') state.images.push(p.doc);
    else if (p.doc.kind === 'Network') (state.networks ??= []).push(p.doc);
    else if (p.doc.kind === 'Secret') (state.secrets ??= []).push(p.doc);
    else state.volumes.push(p.doc);
  }
  return { state, problems: [] };
}

/**
 * Keys that repeat an earlier key of the same map. yaml's own check (`uniqueKeys`) compares each
 * key with every earlier one: a 20,000-entry `env` took seconds. Same rule in one pass: scalar
 * keys are equal when their values are (`1` and `"1"` are not).
 */
function duplicateKeys(doc: Document.Parsed): Array<{ key: string; offset: number; firstOffset: number }> {
  const out: Array<{ key: string; offset: number; firstOffset: number }> = [];
  visit(doc, {
    Map(_, map) {
      if (!isMap(map)) return;
      const seen = new Map<unknown, number>();
      for (const { key } of map.items) {
        if (!isScalar(key) || !key.range) continue;
        const first = seen.get(key.value);
        if (first === undefined) seen.set(key.value, key.range[0]);
        else out.push({ key: JSON.stringify(String(key.value)), offset: key.range[0], firstOffset: first });
      }
    },
  });
  return out;
}

/** The yaml package's messages end with a code excerpt when pretty; ours are one line. */
function yamlMessage(message: string): string {
  return `YAML: ${message.split('\n')[0]!.replace(/ at line \d+, column \d+:?$/, '')}`;
}

// ------------------------------------------------------------------------------------ building

/** A schema-valid document as parsed (`spec` fields as the user wrote them). */
interface RawDoc {
  kind: 'Container' | 'Image' | 'Volume' | 'Network' | 'Secret';
  metadata: { name: string; labels?: Record<string, string> };
  spec?: Record<string, any>;
}

interface Declared {
  kind: string;
  name: string;
  src: SourceDoc;
}

interface Parsed {
  doc: ContainerDoc | ImageDoc | VolumeDoc | NetworkDoc | SecretDoc;
  src: SourceDoc;
}

type Report = (place: Place, message: string) => void;

function build(raw: RawDoc, src: SourceDoc, problem: Report): Parsed | undefined {
  const place = placeAt(src, []);
  const metadata = { name: raw.metadata.name, labels: { ...(raw.metadata.labels ?? {}) } };
  const spec = raw.spec ?? {};
  let ok = true;
  /** Runs a parser that throws a BerthError; reports its message at `path` instead. */
  const at = <T>(path: DocPath, fn: () => T): T | undefined => {
    try {
      return fn();
    } catch (err) {
      if (!(err instanceof BerthError)) throw err;
      ok = false;
      const where = formatDocPath(path);
      problem(placeAt(src, path), err.message.startsWith(where) ? err.message : `${where}: ${err.message}`);
      return undefined;
    }
  };

  if (raw.kind === 'Volume') return { doc: { kind: 'Volume', metadata, spec: {}, place }, src };
  if (raw.kind === 'Secret') {
    const data = Object.fromEntries(Object.entries<string>(spec.data).map(([k, v]) => [k, normaliseSecretValue(v)]));
    return { doc: { kind: 'Secret', metadata, spec: { data }, place }, src };
  }
  if (raw.kind === 'Network') {
    const net = buildNetworkSpec(spec, (path, message) => problem(placeAt(src, path), message));
    return net && { doc: { kind: 'Network', metadata, spec: net, place }, src };
  }

  if (raw.kind === 'Image') {
    const ref = at(['spec', 'ref'], () => normalizeReference(spec.ref));
    const platform = spec.platform === undefined ? undefined : at(['spec', 'platform'], () => formatPlatform(parsePlatform(spec.platform)));
    if (!ok || ref === undefined) return undefined;
    const doc: ImageDoc = { kind: 'Image', metadata, place, spec: { ref, pullPolicy: spec.pullPolicy ?? 'IfNotPresent' } };
    if (platform !== undefined) doc.spec.platform = platform;
    return { doc, src };
  }

  const mounts: MountSpec[] = (spec.mounts ?? []).map((m: any, i: number): MountSpec => {
    if (m.type === 'volume') return { type: 'volume', name: m.name, target: m.target, readOnly: m.readOnly ?? false };
    if (m.type === 'bind') return { type: 'bind', source: m.source, target: m.target, readOnly: m.readOnly ?? false };
    if (m.type === 'secret') return { type: 'secret', name: m.name, ...(m.key !== undefined ? { key: m.key } : {}), target: m.target };
    const tmpfs: MountSpec = { type: 'tmpfs', target: m.target };
    if (m.size !== undefined) tmpfs.sizeBytes = at(['spec', 'mounts', i, 'size'], () => parseSize(m.size, `spec.mounts[${i}].size`));
    return tmpfs;
  });
  const res = spec.resources ?? {};
  const resources: ContainerSpec['resources'] = {};
  if (res.memory !== undefined) resources.memoryBytes = at(['spec', 'resources', 'memory'], () => parseSize(res.memory, 'spec.resources.memory'));
  if (res.cpus !== undefined) resources.cpus = res.cpus;
  if (res.pids !== undefined) resources.pids = res.pids;
  const stopGracePeriodMs =
    spec.stopGracePeriod === undefined ? 10_000 : at(['spec', 'stopGracePeriod'], () => parseDuration(spec.stopGracePeriod, 'spec.stopGracePeriod'));
  if (!ok || stopGracePeriodMs === undefined) return undefined;

  const env: Record<string, string> = {};
  for (const [k, v] of Object.entries(spec.env ?? {})) env[k] = String(v);
  const signal = String(spec.stopSignal ?? 'SIGTERM');
  const c: ContainerSpec = {
    image: spec.image,
    env,
    restartPolicy: spec.restartPolicy ?? 'Always',
    network: spec.network ?? 'host',
    mounts,
    resources,
    readOnlyRootfs: spec.readOnlyRootfs ?? false,
    stopSignal: signal.startsWith('SIG') ? signal : `SIG${signal}`,
    stopGracePeriodMs,
    dependsOn: (spec.dependsOn ?? []).map((d: string | { name: string }) => (typeof d === 'string' ? d : d.name)),
  };
  const healthy = (spec.dependsOn ?? []).filter((d: string | { condition?: string }) => typeof d === 'object' && d.condition === 'Healthy');
  if (healthy.length) c.dependsOnHealthy = healthy.map((d: { name: string }) => d.name);
  if (spec.stopSignal === undefined) c.stopSignalDefaulted = true;
  if (spec.command !== undefined) c.command = [...spec.command];
  if (spec.args !== undefined) c.args = [...spec.args];
  if (spec.envFrom !== undefined) c.envFrom = spec.envFrom.map((e: { secret: string }) => ({ secret: e.secret }));
  if (spec.workingDir !== undefined) c.workingDir = spec.workingDir;
  if (spec.user !== undefined) c.user = String(spec.user);
  Object.assign(
    c,
    buildContainerNetworkFields(spec, (path, message) => {
      ok = false;
      problem(placeAt(src, path), message);
    }),
  );
  const options = buildContainerOptions(spec, c.network, (path, message) => {
    ok = false;
    problem(placeAt(src, path), message);
  });
  Object.assign(c, options);
  if (spec.healthcheck !== undefined) {
    const h = spec.healthcheck;
    const ms = (key: string, fallback: number) =>
      h[key] === undefined ? fallback : at(['spec', 'healthcheck', key], () => parseDuration(h[key], `spec.healthcheck.${key}`));
    const probe: HealthcheckSpec = {
      intervalMs: ms('interval', 10_000) ?? 0,
      timeoutMs: ms('timeout', 3_000) ?? 0,
      retries: h.retries ?? 3,
      startPeriodMs: ms('startPeriod', 0) ?? 0,
    };
    if (h.exec !== undefined) probe.exec = [...h.exec];
    if (h.http !== undefined) probe.http = { port: h.http.port, path: h.http.path ?? '/', host: h.http.host ?? '127.0.0.1' };
    if (h.tcp !== undefined) probe.tcp = { port: h.tcp.port, host: h.tcp.host ?? '127.0.0.1' };
    c.healthcheck = probe;
  }
  if (spec.update !== undefined) {
    const confirmAfterMs =
      spec.update.confirmAfter === undefined
        ? DEFAULT_CONFIRM_AFTER_MS
        : at(['spec', 'update', 'confirmAfter'], () => parseDuration(spec.update.confirmAfter, 'spec.update.confirmAfter'));
    c.update = { strategy: spec.update.strategy ?? 'download-then-kill', confirmAfterMs: confirmAfterMs ?? DEFAULT_CONFIRM_AFTER_MS };
    const conflict = c.update.strategy === 'start-first' ? startFirstConflict(c) : undefined;
    if (conflict)
      at(['spec', 'update', 'strategy'], () => {
        throw invalidArgument(`start-first ${conflict}: use download-then-kill`);
      });
  }
  if (!ok) return undefined;
  // imageRef is resolved in crossCheck, once every Image document is known.
  return { doc: { kind: 'Container', metadata, place, spec: c, imageRef: '' }, src };
}

/**
 * Why a container cannot run beside its own successor, or undefined. Both would hold the same
 * published ports and network names; an http or tcp check from the host would reach the old one.
 */
function startFirstConflict(c: ContainerSpec): string | undefined {
  if (c.ports?.length) return 'cannot publish ports (the old and the new container would both hold them)';
  if (c.networks?.length) return 'is not supported on networks yet (both containers would answer to the same name)';
  if (c.healthcheck && !c.healthcheck.exec) return 'needs an exec health check (an http or tcp check from the host would reach the old container)';
  return undefined;
}

// ------------------------------------------------------------------------------ across documents

/** A bare word (no registry, tag or digest) is read as an `Image` document's name, never as Docker Hub. */
const LOOKS_LIKE_REFERENCE = /[/:@]/;

function crossCheck(parsed: Parsed[], declared: Declared[], problem: Report): void {
  const names = new Map<string, Declared>();
  for (const d of declared) {
    const first = names.get(`${d.kind}/${d.name}`);
    if (first) {
      problem(
        placeAt(d.src, ['metadata', 'name']),
        `duplicate ${d.kind} "${d.name}" (first declared at ${formatPlace(placeAt(first.src, ['metadata', 'name']))})`,
      );
    } else names.set(`${d.kind}/${d.name}`, d);
  }
  const isDeclared = (kind: string, name: string) => names.has(`${kind}/${name}`);
  const byKind = {
    Container: new Map<string, Parsed>(),
    Image: new Map<string, Parsed>(),
    Volume: new Map<string, Parsed>(),
    Network: new Map<string, Parsed>(),
    Secret: new Map<string, Parsed>(),
  };
  for (const p of parsed) if (!byKind[p.doc.kind].has(p.doc.metadata.name)) byKind[p.doc.kind].set(p.doc.metadata.name, p);

  const imageByRef = new Map<string, Parsed>();
  for (const p of byKind.Image.values()) {
    const img = p.doc as ImageDoc;
    const first = imageByRef.get(img.spec.ref);
    if (first) {
      problem(
        placeAt(p.src, ['spec', 'ref']),
        `image ${img.spec.ref} is already declared by Image "${first.doc.metadata.name}" at ${formatPlace(placeAt(first.src, ['spec', 'ref']))}`,
      );
    } else imageByRef.set(img.spec.ref, p);
  }

  for (const p of byKind.Container.values()) {
    const c = p.doc as ContainerDoc;
    const name = c.metadata.name;
    const image = byKind.Image.get(c.spec.image);
    if (image) {
      c.imageRef = (image.doc as ImageDoc).spec.ref;
      c.imageName = image.doc.metadata.name;
    } else if (!LOOKS_LIKE_REFERENCE.test(c.spec.image)) {
      if (!isDeclared('Image', c.spec.image))
        problem(
          placeAt(p.src, ['spec', 'image']),
          `spec.image: no Image named "${c.spec.image}" (declare one with kind: Image, or write a reference with a tag, e.g. "${c.spec.image}:latest")`,
        );
    } else {
      try {
        c.imageRef = normalizeReference(c.spec.image);
      } catch (err) {
        if (!(err instanceof BerthError)) throw err;
        problem(placeAt(p.src, ['spec', 'image']), `spec.image: ${err.message}`);
      }
    }

    c.spec.dependsOn.forEach((dep, i) => {
      if (dep === name) problem(placeAt(p.src, ['spec', 'dependsOn', i]), `spec.dependsOn: container "${name}" depends on itself`);
      else if (!isDeclared('Container', dep)) problem(placeAt(p.src, ['spec', 'dependsOn', i]), `spec.dependsOn: no Container named "${dep}"`);
    });

    const targets = new Map<string, number>();
    c.spec.mounts.forEach((m, i) => {
      if (m.type === 'volume' && !isDeclared('Volume', m.name)) {
        problem(
          placeAt(p.src, ['spec', 'mounts', i, 'name']),
          `spec.mounts[${i}].name: no Volume named "${m.name}" (declare it: kind: Volume, metadata.name: ${m.name})`,
        );
      }
      const first = targets.get(m.target);
      if (first !== undefined) {
        problem(placeAt(p.src, ['spec', 'mounts', i, 'target']), `spec.mounts[${i}].target: ${m.target} is already mounted by mounts[${first}]`);
      } else targets.set(m.target, i);
    });
  }

  reportCycles(byKind.Container, problem);
  const reportAt = (p: Parsed) => (path: DocPath, message: string) => problem(placeAt(p.src, path), message);
  resolveContainerNetworks(
    [...byKind.Container.values()].map((p) => ({ doc: p.doc as ContainerDoc, report: reportAt(p) })),
    [...byKind.Network.values()].map((p) => ({ doc: p.doc as NetworkDoc, report: reportAt(p) })),
  );
  resolveContainerSecrets(
    [...byKind.Container.values()].map((p) => ({ doc: p.doc as ContainerDoc, report: reportAt(p) })),
    new Map([...byKind.Secret].map(([name, p]) => [name, p.doc as SecretDoc])),
    (name) => isDeclared('Secret', name),
  );
}

/** Each dependency cycle once, at the `dependsOn` entry of its first member (by name). */
function reportCycles(containers: Map<string, Parsed>, problem: Report): void {
  const deps = (n: string) => ((containers.get(n)?.doc as ContainerDoc | undefined)?.spec.dependsOn ?? []).filter((d) => d !== n && containers.has(d));
  const state = new Map<string, 'visiting' | 'done'>();
  const stack: string[] = [];
  const visit = (n: string) => {
    state.set(n, 'visiting');
    stack.push(n);
    for (const d of deps(n)) {
      const s = state.get(d);
      if (s === 'visiting') {
        const cycle = stack.slice(stack.indexOf(d));
        const first = [...cycle].sort()[0]!;
        const next = cycle[(cycle.indexOf(first) + 1) % cycle.length]!;
        const p = containers.get(first)!;
        const i = (p.doc as ContainerDoc).spec.dependsOn.indexOf(next);
        const ring = [...cycle.slice(cycle.indexOf(first)), ...cycle.slice(0, cycle.indexOf(first)), first];
        problem(placeAt(p.src, ['spec', 'dependsOn', i]), `spec.dependsOn: dependency cycle ${ring.join(' → ')}`);
      } else if (s === undefined) visit(d);
    }
    stack.pop();
    state.set(n, 'done');
  };
  for (const n of [...containers.keys()].sort()) if (!state.has(n)) visit(n);
}
