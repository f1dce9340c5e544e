/**
 * plan(desired, actual, now) → the steps that bring the device to the desired state, each with its
 * reason in plain words and the steps it must wait for. PURE: no disk, no clock, no network; the
 * loop calls it every turn from scratch (level-triggered), and it is tested with plain tables.
 *
 * The rules, in short:
 * - Images (Image objects, and references containers name directly) are pulled when not present,
 *   repaired when a blob or snapshot is missing, and re-pulled when `pullPolicy: Always` and the
 *   registry says the tag moved. A pull whose registry is unreachable becomes a `wait`, and so does
 *   every step that needs that image; everything else goes ahead (offline first).
 * - A container is recreated when the hash of its normalised spec plus image digest changed; the
 *   recreate waits for the pull of the new image (updates download before they kill) and its reason
 *   says what changed. Containers no longer desired are stopped and removed; then garbage goes.
 * - An exited container is restarted by its restart policy with back-off (runtime/restart-policy);
 *   before it is due, the plan holds a `wait` saying when. A container whose record exists but whose
 *   runtime container vanished is created again; one created but never started is started.
 * - A container starts only after its `dependsOn` containers are running, completed (exited 0), or
 *   being started by this plan (then `after` them); otherwise it waits, and so do its dependents.
 * - New containers are created after removals, so a renamed container can take over a port.
 */
import { parseReference } from '../oci/reference.ts';
import { describeSpecChanges } from '../manifest/spec-diff.ts';
import { secretsUsedBy } from '../manifest/secret-refs.ts';
import { normaliseContainerSpec, specHash, type NormalisedContainerSpec } from '../manifest/spec-hash.ts';
import type { ContainerDoc, DesiredState, PullPolicy } from '../manifest/types.ts';
import { decideRestart } from '../runtime/restart-policy.ts';
import type { ActualContainer, ActualImage, ActualState, PullStep, Step, WaitStep } from './types.ts';

/** An image the desired state needs: an Image object, or a reference a container names directly. */
export interface DesiredImage {
  /** Normalised reference. */
  ref: string;
  /** The Image object's name, or the reference. */
  name: string;
  pullPolicy: PullPolicy;
  platform?: string;
}

/**
 * Every image the desired state needs, once each (Image objects first, then references containers
 * name directly, which are IfNotPresent). observe() uses it to know which images to look at and
 * which `Always` tags to resolve at their registry.
 */
export function desiredImages(desired: DesiredState): DesiredImage[] {
  const wanted = new Map<string, DesiredImage>();
  for (const img of desired.images) {
    const d: DesiredImage = { ref: img.spec.ref, name: img.metadata.name, pullPolicy: img.spec.pullPolicy };
    if (img.spec.platform !== undefined) d.platform = img.spec.platform;
    wanted.set(img.spec.ref, d);
  }
  for (const c of desired.containers) {
    if (!wanted.has(c.imageRef)) wanted.set(c.imageRef, { ref: c.imageRef, name: c.imageRef, pullPolicy: 'IfNotPresent' });
  }
  return [...wanted.values()];
}

/** How one desired image stands. */
interface ImageStanding {
  ref: string;
  name: string;
  /** Present and complete: containers can be created from it without a pull. */
  usable: boolean;
  /** The pull step planned for it, if any. */
  pullId?: string;
  /** The planned pull brings new content (not present, or the tag moved). */
  changes: boolean;
  /** Why it cannot be pulled now, if it needs a pull and cannot get one. */
  blocked?: string;
  actual?: ActualImage;
}

/** What a desired container will do in this plan, for its dependents. */
type ContainerOutcome = 'steady' | 'starting' | 'waiting' | 'down';

export function plan(desired: DesiredState, actual: ActualState, now: number): Step[] {
  const steps: Step[] = [];
  const waits: WaitStep[] = [];
  const wait = (what: 'image' | 'container', object: string, reason: string, until?: number) => {
    const w: WaitStep = { kind: 'wait', id: `wait:${what}:${object}`, after: [], object, reason };
    if (until !== undefined) w.until = until;
    waits.push(w);
  };

  // ------------------------------------------------------------------------------------ volumes
  const existingVolumes = new Set(actual.volumes);
  for (const v of desired.volumes) {
    if (existingVolumes.has(v.metadata.name)) continue;
    steps.push({
      kind: 'create-volume',
      id: `volume:${v.metadata.name}`,
      after: [],
      volume: v.metadata.name,
      reason: `${v.metadata.name}: create volume (not present)`,
    });
  }

  // ------------------------------------------------------------------------------------- images
  const actualImages = new Map(actual.images.map((i) => [i.ref, i] as const));
  const unreachable = new Set(actual.unreachableRegistries);
  const images = new Map<string, ImageStanding>();
  for (const want of desiredImages(desired)) {
    const ref = want.ref;
    const a = actualImages.get(ref);
    let why: string | undefined;
    let repair = false;
    let changes = false;
    if (!a) [why, changes] = ['not present', true];
    else if (!a.blobsPresent)
      [why, repair] = [a.corruptBlobs?.length ? `repair: ${a.corruptBlobs.length} blob(s) corrupt on disk` : 'repair: blobs missing', true];
    else if (!a.unpacked) [why, repair] = [a.unpackedBefore === false ? 'unpack: not unpacked yet' : 'repair: snapshots missing', true];
    else if (want.platform !== undefined && a.platform !== undefined && want.platform !== a.platform) {
      [why, changes] = [`platform ${a.platform} → ${want.platform}`, true];
    } else if (want.pullPolicy === 'Always' && a.remoteDigest !== undefined && a.remoteDigest !== a.targetDigest) {
      [why, changes] = [`tag moved to ${short(a.remoteDigest)}`, true];
    }
    const standing: ImageStanding = { ref, name: want.name, usable: a?.blobsPresent === true && a.unpacked, changes, actual: a };
    if (why !== undefined) {
      // Unpacking blobs that are all present needs no registry (an imported image, offline).
      const needsRegistry = !a?.blobsPresent || changes;
      const registry = registryOf(ref);
      if (needsRegistry && registry !== undefined && unreachable.has(registry)) {
        standing.blocked = `registry ${registry} unreachable`;
        wait('image', want.name, `${want.name}: pull waits (${why}; registry ${registry} unreachable)`);
      } else {
        standing.pullId = `pull:${ref}`;
        const step: PullStep = { kind: 'pull', id: standing.pullId, after: [], ref, name: want.name, repair, reason: `${want.name}: pull (${why})` };
        if (want.platform !== undefined) step.platform = want.platform;
        steps.push(step);
      }
    } else if (want.pullPolicy === 'Always' && a !== undefined) {
      // Nothing to do with what is present, but whether the tag moved is unknown: say so (the
      // image is not known to be up to date), without holding up anything that uses it.
      const registry = registryOf(ref);
      if (registry !== undefined && unreachable.has(registry)) {
        wait('image', want.name, `${want.name}: update check waits (registry ${registry} unreachable; keeping ${short(a.targetDigest)})`);
      }
    }
    images.set(ref, standing);
  }

  // ---------------------------------------------------------------------------------- removals
  const desiredNames = new Set(desired.containers.map((c) => c.metadata.name));
  const removeIds: string[] = [];
  for (const c of actual.containers) {
    if (desiredNames.has(c.name)) continue;
    const hold = c.state === 'running' ? actual.updateHolds?.[c.name] : undefined;
    if (hold) {
      wait('container', c.name, `${c.name}: ${hold.reason} (then stop and remove: no longer in the manifests)`, hold.until);
      continue;
    }
    removeIds.push(`remove:${c.name}`);
    steps.push({ kind: 'remove', id: `remove:${c.name}`, after: [], container: c.name, reason: `${c.name}: stop and remove (no longer in the manifests)` });
  }

  // -------------------------------------------------------------------------------- containers
  const actualContainers = new Map(actual.containers.map((c) => [c.name, c] as const));
  const byName = new Map(desired.containers.map((c) => [c.metadata.name, c] as const));
  const outcome = new Map<string, ContainerOutcome>();
  const kept = new Map((actual.retiredContainers ?? []).map((r) => [r.name, r] as const));
  let replaced = removeIds.length > 0;

  for (const doc of dependencyOrder(desired.containers)) {
    const name = doc.metadata.name;
    const a = actualContainers.get(name);
    const image = images.get(doc.imageRef)!;
    const volumeAfter = doc.spec.mounts.flatMap((m) => (m.type === 'volume' && !existingVolumes.has(m.name) ? [`volume:${m.name}`] : []));

    // Decide what this container needs, before looking at its dependencies.
    let intent:
      | { kind: 'none'; outcome: 'steady' | 'down' }
      | { kind: 'wait'; reason: string; until?: number }
      | { kind: 'create' | 'recreate'; reason: string; changes?: string[]; spec: NormalisedContainerSpec; repair?: boolean }
      | { kind: 'restore'; reason: string }
      | { kind: 'start'; reason: string; backoffStreak: number; stopFirst?: boolean };

    const needsImage = (verb: string): string | undefined =>
      image.blocked !== undefined && (!image.usable || image.changes) ? `${name}: ${verb} waits for image ${image.name} (${image.blocked})` : undefined;

    const spec = normaliseContainerSpec(doc);
    if (!a) {
      intent = { kind: 'create', reason: `${name}: create (not present)`, spec };
    } else if (a.state === 'absent') {
      intent = { kind: 'create', reason: `${name}: create (container missing: ${a.absentReason ?? 'removed outside berth'})`, spec, repair: true };
    } else {
      const changes = whatChanged(a, spec, image);
      if (changes.length > 0) {
        intent = { kind: 'recreate', reason: `${name}: recreate (${changes.join(', ')})`, changes, spec };
      } else if (a.state === 'running' && a.unhealthySince !== undefined && doc.spec.restartPolicy === 'Always') {
        // Unhealthy past its retries: restarted like a crashed container, with the same back-off.
        const d = decideRestart({
          policy: 'Always',
          exitCode: 1,
          ranForMs: a.unhealthySince - (a.startedAt ?? a.unhealthySince),
          streak: a.backoffStreak,
          lost: false,
        });
        const dueAt = a.unhealthySince + (d.restart ? d.delayMs : 0);
        if (dueAt > now) intent = { kind: 'wait', reason: `${name}: restart in ${formatMs(dueAt - now)} (unhealthy; restartPolicy Always)`, until: dueAt };
        else
          intent = {
            kind: 'start',
            reason: `${name}: restart (unhealthy; restartPolicy Always; restart ${d.restart ? d.streak : a.backoffStreak + 1})`,
            backoffStreak: d.restart ? d.streak : a.backoffStreak + 1,
            stopFirst: true,
          };
      } else if (a.state === 'running') {
        intent = { kind: 'none', outcome: 'steady' };
      } else if (a.state === 'created') {
        intent = { kind: 'start', reason: `${name}: start (created, not running)`, backoffStreak: a.backoffStreak };
      } else {
        const d = restartByPolicy(doc, a);
        if (!d.restart) intent = { kind: 'none', outcome: a.exitCode === 0 && !a.oomKilled ? 'steady' : 'down' };
        else if (d.dueAt > now) {
          intent = { kind: 'wait', reason: `${name}: restart in ${formatMs(d.dueAt - now)} (${d.why}; back-off ${formatMs(d.delayMs)})`, until: d.dueAt };
        } else {
          intent = { kind: 'start', reason: `${name}: restart (${d.why}; restart ${d.backoffStreak})`, backoffStreak: d.backoffStreak };
        }
      }
    }

    // A rollback: the container the rollout replaced is still there, exactly as wanted.
    const retired = kept.get(name);
    if ((intent.kind === 'create' || intent.kind === 'recreate') && retired && specHash(spec, retired.imageDigest) === retired.specHash) {
      intent = {
        kind: 'restore',
        reason: `${name}: restore the container the rollout replaced (${intent.kind === 'recreate' ? (intent.changes ?? []).join(', ') : 'container missing'})`,
      };
    }
    if (intent.kind === 'create' || intent.kind === 'recreate') {
      const blocked = needsImage(intent.kind);
      if (blocked) intent = { kind: 'wait', reason: blocked };
    }
    // A secret this device cannot decrypt holds back the containers that use it, and only them.
    const secret = intent.kind !== 'none' && intent.kind !== 'wait' ? secretsUsedBy(doc).find((s) => actual.secretProblems?.[s]) : undefined;
    if (secret) intent = { kind: 'wait', reason: `${name}: ${intent.kind} waits for secret ${secret} (${actual.secretProblems![secret]})` };
    // An update stops a running container only when the window is open and the app lets it.
    const hold = a?.state === 'running' ? actual.updateHolds?.[name] : undefined;
    if (hold && (intent.kind === 'recreate' || intent.kind === 'restore')) {
      intent = {
        kind: 'wait',
        reason: `${name}: ${hold.reason} (then ${intent.reason.slice(name.length + 2)})`,
        ...(hold.until !== undefined ? { until: hold.until } : {}),
      };
    }

    // A host port it publishes is taken: making it would fail half-way (or stop the old one for nothing).
    const held = intent.kind === 'create' || intent.kind === 'recreate' ? actual.portsHeld?.[name] : undefined;
    if (held && (held.container === undefined || desiredNames.has(held.container))) intent = { kind: 'wait', reason: `${name}: blocked (${held.reason})` };

    if (intent.kind === 'none') {
      outcome.set(name, intent.outcome);
      continue;
    }
    if (intent.kind === 'wait') {
      outcome.set(name, 'waiting');
      wait('container', name, intent.reason, intent.until);
      continue;
    }

    // It will start: only once its dependencies are up, or coming up in this plan.
    const after: string[] = [];
    const notReady: string[] = [];
    const notHealthy: { dep: string; why: string }[] = [];
    for (const dep of doc.spec.dependsOn) {
      const o = outcome.get(dep);
      const a = actualContainers.get(dep);
      // condition Healthy: running and its check passed; one started by this plan is not checked yet.
      if (doc.spec.dependsOnHealthy?.includes(dep) && (o === 'starting' || (o === 'steady' && a?.state === 'running'))) {
        const health = o === 'starting' ? undefined : a?.health;
        if (health !== 'healthy') notHealthy.push({ dep, why: health === 'unhealthy' ? 'unhealthy' : 'not checked yet' });
      } else if (o === 'starting') after.push(`container:${dep}`);
      else if (o !== 'steady' || !isUp(actualContainers.get(dep), byName.get(dep))) notReady.push(dep);
    }
    if (notReady.length > 0 || notHealthy.length > 0) {
      outcome.set(name, 'waiting');
      const why = [...(notReady.length ? [`${notReady.join(', ')} (not running)`] : []), ...notHealthy.map((n) => `${n.dep} to be healthy (${n.why})`)];
      wait('container', name, `${name}: ${intent.kind} waits for ${why.join(' and ')}`);
      if (notReady.length === 0 && notHealthy.every((n) => n.why !== 'unhealthy')) waits.at(-1)!.awaitsHealth = notHealthy.map((n) => n.dep);
      continue;
    }
    outcome.set(name, 'starting');
    const id = `container:${name}`;
    if (intent.kind === 'restore') {
      replaced = true;
      steps.push({ kind: 'restore', id, after: [...after, ...removeIds], container: name, doc, reason: intent.reason });
      continue;
    }
    if (intent.kind === 'start') {
      // A new task mounts the image's layer snapshots under its writable layer: a repair comes first.
      if (image.pullId && image.actual && !image.actual.unpacked) after.push(image.pullId);
      steps.push({
        kind: 'start',
        id,
        after,
        container: name,
        backoffStreak: intent.backoffStreak,
        reason: intent.reason,
        ...(intent.stopFirst ? { stopFirst: true } : {}),
      });
      continue;
    }
    if (image.pullId) after.push(image.pullId);
    after.push(...volumeAfter);
    if (intent.kind === 'create') {
      after.push(...removeIds);
      steps.push({ kind: 'create', id, after, container: name, doc, spec: intent.spec, reason: intent.reason, ...(intent.repair ? { repair: true } : {}) });
    } else {
      replaced = true;
      const pull = image.changes ? steps.find((s) => s.id === image.pullId) : undefined;
      if (pull && doc.spec.update?.strategy === 'kill-then-download') {
        // Room for the new image first: the old container goes (for good) before the download.
        // (Before the pull in the list too: a step waits only for steps listed before it.)
        const removeId = `remove:${name}`;
        steps.splice(steps.indexOf(pull), 0, {
          kind: 'remove',
          id: removeId,
          after: [],
          container: name,
          discard: true,
          reason: `${name}: stop and remove before the download (update strategy kill-then-download)`,
        });
        pull.after.push(removeId);
      }
      steps.push({ kind: 'recreate', id, after, container: name, doc, spec: intent.spec, changes: intent.changes ?? [], reason: intent.reason });
    }
  }

  const retired = actual.retiredImages ?? [];
  if (replaced || retired.length > 0) {
    const why = [...(replaced ? ['containers removed or replaced'] : []), ...(retired.length ? [`images no longer wanted: ${retired.join(', ')}`] : [])];
    steps.push({ kind: 'gc', id: 'gc', after: steps.map((s) => s.id), reason: `collect garbage (${why.join('; ')})` });
  }
  return [...steps, ...waits];
}

/**
 * The restart policy's decision for an exited container (the runtime's pure decideRestart: 10 s
 * doubling to 5 min, reset after 10 min up), with when it is due. An unknown exit status (the
 * supervisor died with the task) counts as a failure; so does an OOM kill.
 */
function restartByPolicy(
  doc: ContainerDoc,
  a: ActualContainer,
): { restart: false } | { restart: true; dueAt: number; delayMs: number; backoffStreak: number; why: string } {
  const failed = a.oomKilled === true || a.exitCode === undefined || a.exitCode !== 0;
  const d = decideRestart({
    policy: doc.spec.restartPolicy,
    exitCode: failed ? a.exitCode || 255 : 0,
    ranForMs: a.startedAt !== undefined && a.finishedAt !== undefined ? a.finishedAt - a.startedAt : 0,
    streak: a.backoffStreak,
    lost: a.exitLost === true,
  });
  if (!d.restart) return { restart: false };
  const exit = a.exitLost
    ? 'exit status lost (reboot?)'
    : a.oomKilled
      ? 'OOM-killed'
      : a.exitCode === undefined
        ? 'exited (status unknown)'
        : `exited with code ${a.exitCode}`;
  return {
    restart: true,
    dueAt: (a.finishedAt ?? 0) + d.delayMs,
    delayMs: d.delayMs,
    backoffStreak: d.streak,
    why: `${exit}; restartPolicy ${doc.spec.restartPolicy}`,
  };
}

/** Why the container must be recreated; empty if it need not be. */
function whatChanged(a: ActualContainer, spec: NormalisedContainerSpec, image: ImageStanding): string[] {
  if (a.imageRef !== spec.image || (image.changes && image.actual !== undefined)) {
    // A new image (another reference, or the tag moved): its digest is known only after the pull.
    const words = a.appliedSpec ? describeSpecChanges(a.appliedSpec, spec) : [];
    if (a.imageRef === spec.image) words.unshift(`image ${image.name} updated`);
    else if (!words.some((w) => w.startsWith('image '))) words.unshift(`image ${a.imageRef} → ${spec.image}`);
    return words;
  }
  // Same reference: compare against the digest present now (or, while it is being repaired or is
  // missing, the one the container was made from: a repair brings back the same content).
  const digest = image.usable && image.actual ? image.actual.manifestDigest : a.imageDigest;
  if (specHash(spec, digest) === a.specHash) return [];
  const words = a.appliedSpec ? describeSpecChanges(a.appliedSpec, spec) : [];
  if (digest !== a.imageDigest) words.push(`image digest ${short(a.imageDigest)} → ${short(digest)}`);
  return words.length > 0 ? words : ['spec changed'];
}

/** A dependency counts as up when it runs, or ran to completion (exit 0) and is not due to run again. */
function isUp(a: ActualContainer | undefined, doc: ContainerDoc | undefined): boolean {
  if (!a || !doc) return false;
  if (a.state === 'running') return true;
  return a.state === 'exited' && a.exitCode === 0 && !a.oomKilled && doc.spec.restartPolicy !== 'Always';
}

/** Containers ordered so dependencies come first (the loader rejects cycles), stable by name. */
function dependencyOrder(containers: ContainerDoc[]): ContainerDoc[] {
  const byName = new Map(containers.map((c) => [c.metadata.name, c] as const));
  const out: ContainerDoc[] = [];
  const seen = new Set<string>();
  const visit = (c: ContainerDoc) => {
    if (seen.has(c.metadata.name)) return;
    seen.add(c.metadata.name);
    for (const d of c.spec.dependsOn) {
      const dep = byName.get(d);
      if (dep) visit(dep);
    }
    out.push(c);
  };
  for (const c of [...containers].sort((x, y) => (x.metadata.name < y.metadata.name ? -1 : 1))) visit(c);
  return out;
}

function registryOf(ref: string): string | undefined {
  try {
    return parseReference(ref).domain;
  } catch {
    return undefined;
  }
}

function short(digest: string): string {
  const i = digest.indexOf(':');
  return i >= 0 ? `${digest.slice(0, i + 1)}${digest.slice(i + 1, i + 13)}` : digest.slice(0, 12);
}

/** `45s`, `2m30s`, `5m`, `250ms`. */
export function formatMs(ms: number): string {
  if (ms < 1000) return `${Math.max(0, Math.round(ms))}ms`;
  const s = Math.ceil(ms / 1000);
  if (s < 60) return `${s}s`;
  const m = Math.floor(s / 60);
  return s % 60 === 0 ? `${m}m` : `${m}m${s % 60}s`;
}

const SYMBOL: Record<Step['kind'], string> = {
  'create-volume': '+',
  pull: '↓',
  create: '+',
  start: '▶',
  recreate: '~',
  restore: '↺',
  remove: '-',
  gc: '♻',
  wait: '…',
};

/** One line per step, in plan order: `~ web: recreate (env GREETING changed)  [after pull:…]`. */
export function describePlan(steps: Step[]): string {
  if (steps.length === 0) return 'no changes: the device is in the desired state';
  return steps.map((s) => `${SYMBOL[s.kind]} ${s.reason}${s.after.length > 0 && s.kind !== 'gc' ? `  [after ${s.after.join(', ')}]` : ''}`).join('\n');
}
