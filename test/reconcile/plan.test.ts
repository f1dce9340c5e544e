/**
 * Table tests of the pure plan(): desired state from real YAML through the real loader, actual
 * state as plain data, no disk.
 */
import { beforeAll, describe, expect, it } from 'vitest';
import { parseManifestSources } from '../../src/manifest/load.ts';
import { createDocumentValidator, type DocumentValidator } from '../../src/manifest/schema.ts';
import { containerSpecHash, normaliseContainerSpec } from '../../src/manifest/spec-hash.ts';
import type { DesiredState } from '../../src/manifest/types.ts';
import { describePlan, desiredImages, plan } from '../../src/reconcile/plan.ts';
import { isChange, type ActualContainer, type ActualImage, type ActualState, type Step } from '../../src/reconcile/types.ts';

let validator: DocumentValidator;
beforeAll(async () => {
  validator = await createDocumentValidator();
});

const NOW = Date.UTC(2026, 0, 1, 12, 0, 0);
const S = 1000;
const MIN = 60 * S;
const dg = (c: string) => `sha256:${c.repeat(64)}`;
const REG = '127.0.0.1:5000';
const BB = `${REG}/busybox:latest`;

const HEAD = 'apiVersion: berth.dev/v1alpha1';
function desiredOf(yaml: string): DesiredState {
  const r = parseManifestSources([{ file: 'm.yaml', text: yaml }], validator);
  expect(r.problems).toEqual([]);
  return r.state!;
}
const ctr = (name: string, lines: string[]) => `${HEAD}\nkind: Container\nmetadata: {name: ${name}}\nspec:\n${lines.map((l) => `  ${l}`).join('\n')}\n`;
const vol = (name: string) => `${HEAD}\nkind: Volume\nmetadata: {name: ${name}}\n`;
const img = (name: string, ref: string, extra = '') => `${HEAD}\nkind: Image\nmetadata: {name: ${name}}\nspec: {ref: "${ref}"${extra}}\n`;
const docs = (...d: string[]) => d.join('---\n');

/** The demo-like set: web (volume) and ticker (depends on web), both on busybox. */
const DEMO = (env = 'hello', ref = BB) =>
  docs(
    img('busybox', ref),
    vol('web-data'),
    ctr('web', ['image: busybox', 'command: [/bin/httpd]', `env: {GREETING: ${env}}`, 'mounts: [{type: volume, name: web-data, target: /data}]']),
    ctr('ticker', ['image: busybox', 'dependsOn: [web]', 'command: [/bin/sh, -c, "sleep 5"]']),
  );

function image(ref: string, digest: string, over: Partial<ActualImage> = {}): ActualImage {
  return { ref, targetDigest: digest, manifestDigest: digest, blobsPresent: true, unpacked: true, ...over };
}

/** The actual container that applying `name` from `desired` with image `digest` would have made. */
function made(desired: DesiredState, name: string, digest: string, over: Partial<ActualContainer> = {}): ActualContainer {
  const doc = desired.containers.find((c) => c.metadata.name === name)!;
  return {
    name,
    specHash: containerSpecHash(doc, digest),
    imageRef: doc.imageRef,
    imageDigest: digest,
    appliedSpec: normaliseContainerSpec(doc),
    state: 'running',
    backoffStreak: 0,
    startedAt: NOW - 60 * MIN,
    ...over,
  };
}

/** The actual state of a device that converged on `desired` with every image at `digest`. */
function converged(desired: DesiredState, digest = dg('a')): ActualState {
  const refs = new Set([...desired.images.map((i) => i.spec.ref), ...desired.containers.map((c) => c.imageRef)]);
  return {
    images: [...refs].map((r) => image(r, digest)),
    containers: desired.containers.map((c) => made(desired, c.metadata.name, digest)),
    volumes: desired.volumes.map((v) => v.metadata.name),
    unreachableRegistries: [],
  };
}

/** plan() plus the invariants every plan keeps: unique ids, `after` naming earlier steps only. */
function planOf(desired: DesiredState, actual: ActualState, now = NOW): Step[] {
  const frozen = structuredClone(actual);
  const steps = plan(desired, actual, now);
  expect(actual).toEqual(frozen); // pure: inputs untouched
  const seen = new Set<string>();
  for (const s of steps) {
    expect(seen.has(s.id), `duplicate id ${s.id}`).toBe(false);
    for (const a of s.after) expect(seen.has(a), `${s.id} after ${a}, which is not an earlier step`).toBe(true);
    seen.add(s.id);
  }
  return steps;
}
const brief = (steps: Step[]) => steps.map((s) => [s.id, s.reason, s.after]);

describe('plan()', () => {
  it('fresh install: volume and pull first, containers after them, dependents after dependencies', () => {
    const d = desiredOf(DEMO());
    const steps = planOf(d, { images: [], containers: [], volumes: [], unreachableRegistries: [] });
    expect(brief(steps)).toEqual([
      ['volume:web-data', 'web-data: create volume (not present)', []],
      [`pull:${BB}`, 'busybox: pull (not present)', []],
      ['container:web', 'web: create (not present)', [`pull:${BB}`, 'volume:web-data']],
      ['container:ticker', 'ticker: create (not present)', ['container:web', `pull:${BB}`]],
    ]);
    const create = steps[2]!;
    expect(create.kind === 'create' && create.doc.metadata.name === 'web' && create.spec.env.GREETING === 'hello').toBe(true);
    expect(steps[1]).toMatchObject({ kind: 'pull', ref: BB, name: 'busybox', repair: false });
  });

  it('no change: no steps', () => {
    const d = desiredOf(DEMO());
    const steps = planOf(d, converged(d));
    expect(steps).toEqual([]);
    expect(describePlan(steps)).toBe('no changes: the device is in the desired state');
  });

  it('env change: recreate with the reason, then garbage collection; nothing else moves', () => {
    const before = desiredOf(DEMO('hello'));
    const steps = planOf(desiredOf(DEMO('bonjour')), converged(before));
    expect(brief(steps)).toEqual([
      ['container:web', 'web: recreate (env GREETING changed)', []],
      ['gc', 'collect garbage (containers removed or replaced)', ['container:web']],
    ]);
    expect(steps[0]).toMatchObject({ kind: 'recreate', changes: ['env GREETING changed'] });
  });

  it('image tag change: pull the new image, then recreate (download before kill)', () => {
    const before = desiredOf(DEMO());
    const newRef = `${REG}/busybox:1.37`;
    const steps = planOf(desiredOf(DEMO('hello', newRef)), converged(before));
    expect(brief(steps)).toEqual([
      [`pull:${newRef}`, 'busybox: pull (not present)', []],
      ['container:web', `web: recreate (image ${BB} → ${newRef})`, [`pull:${newRef}`]],
      ['container:ticker', `ticker: recreate (image ${BB} → ${newRef})`, ['container:web', `pull:${newRef}`]],
      ['gc', expect.any(String), [`pull:${newRef}`, 'container:web', 'container:ticker']],
    ]);
  });

  it('kill-then-download: the old container is removed (for good) before the new image is pulled', () => {
    const set = (ref: string) =>
      docs(
        img('busybox', ref),
        ctr('web', ['image: busybox', 'command: [/bin/httpd]', 'update: {strategy: kill-then-download}']),
        ctr('ticker', ['image: busybox', 'command: [/bin/sh]']),
      );
    const newRef = `${REG}/busybox:1.37`;
    const steps = planOf(desiredOf(set(newRef)), converged(desiredOf(set(BB))));
    expect(brief(steps)).toEqual([
      ['remove:web', 'web: stop and remove before the download (update strategy kill-then-download)', []],
      [`pull:${newRef}`, 'busybox: pull (not present)', ['remove:web']],
      ['container:ticker', `ticker: recreate (image ${BB} → ${newRef})`, [`pull:${newRef}`]],
      ['container:web', `web: recreate (image ${BB} → ${newRef})`, [`pull:${newRef}`]],
      ['gc', expect.any(String), ['remove:web', `pull:${newRef}`, 'container:ticker', 'container:web']],
    ]);
    expect(steps[0]).toMatchObject({ kind: 'remove', discard: true });
    // A change that needs no download keeps the default order: nothing to make room for.
    const envOnly = planOf(desiredOf(set(BB).replace('[/bin/httpd]', '[/bin/httpd, -f]')), converged(desiredOf(set(BB))));
    expect(envOnly.map((s) => s.id)).toEqual(['container:web', 'gc']);
    // With the registry unreachable the pull waits, and nothing is removed to make room for it.
    const offline = planOf(desiredOf(set(newRef)), { ...converged(desiredOf(set(BB))), unreachableRegistries: [REG] });
    expect(offline.filter(isChange)).toEqual([]);
  });

  it('the tag moved (pullPolicy Always, registry says so): pull, then recreate', () => {
    const d = desiredOf(docs(img('busybox', BB, ', pullPolicy: Always'), ctr('web', ['image: busybox'])));
    const actual = converged(d);
    actual.images[0]!.remoteDigest = dg('b');
    const steps = planOf(d, actual);
    expect(brief(steps)).toEqual([
      [`pull:${BB}`, `busybox: pull (tag moved to sha256:bbbbbbbbbbbb)`, []],
      ['container:web', 'web: recreate (image busybox updated)', [`pull:${BB}`]],
      ['gc', expect.any(String), [`pull:${BB}`, 'container:web']],
    ]);
    // IfNotPresent never follows the tag.
    const pinned = desiredOf(docs(img('busybox', BB), ctr('web', ['image: busybox'])));
    expect(planOf(pinned, actual)).toEqual([]);
  });

  it('another platform asked of a present image: pull it, then recreate its containers', () => {
    const d = desiredOf(docs(img('busybox', BB, ', platform: linux/arm64'), ctr('web', ['image: busybox'])));
    const actual = converged(d);
    actual.images[0]!.platform = 'linux/amd64';
    expect(brief(planOf(d, actual)).slice(0, 2)).toEqual([
      [`pull:${BB}`, 'busybox: pull (platform linux/amd64 → linux/arm64)', []],
      ['container:web', 'web: recreate (image busybox updated)', [`pull:${BB}`]],
    ]);
    expect(planOf(d, actual)[0]).toMatchObject({ kind: 'pull', platform: 'linux/arm64', repair: false });
    actual.images[0]!.platform = 'linux/arm64';
    expect(planOf(d, actual)).toEqual([]);
  });

  it('an image digest that differs from the one the container was made from: recreate, saying so', () => {
    const d = desiredOf(DEMO());
    const actual = converged(d);
    actual.images[0] = image(BB, dg('c'));
    const steps = planOf(d, actual);
    expect(steps.filter(isChange).map((s) => s.reason)).toEqual([
      'web: recreate (image digest sha256:aaaaaaaaaaaa → sha256:cccccccccccc)',
      'ticker: recreate (image digest sha256:aaaaaaaaaaaa → sha256:cccccccccccc)',
      'collect garbage (containers removed or replaced)',
    ]);
  });

  it('removed container: stop and remove, then garbage collection; its volume stays', () => {
    const before = desiredOf(DEMO());
    const after = desiredOf(
      docs(
        img('busybox', BB),
        vol('web-data'),
        ctr('web', ['image: busybox', 'command: [/bin/httpd]', 'env: {GREETING: hello}', 'mounts: [{type: volume, name: web-data, target: /data}]']),
      ),
    );
    expect(brief(planOf(after, converged(before)))).toEqual([
      ['remove:ticker', 'ticker: stop and remove (no longer in the manifests)', []],
      ['gc', expect.any(String), ['remove:ticker']],
    ]);
  });

  it('a renamed container is created after the old one is removed (it may need its port)', () => {
    const before = desiredOf(ctr('web', ['image: busybox:1']));
    const after = desiredOf(ctr('www', ['image: busybox:1']));
    const steps = planOf(after, converged(before));
    expect(brief(steps)).toEqual([
      ['remove:web', expect.any(String), []],
      ['container:www', 'www: create (not present)', ['remove:web']],
      ['gc', expect.any(String), ['remove:web', 'container:www']],
    ]);
  });

  it('dependsOn: a chain starts in order, whatever the order in the files', () => {
    const d = desiredOf(
      docs(
        ctr('uploader', ['image: busybox:1', 'dependsOn: [collector]']),
        ctr('collector', ['image: busybox:1', 'dependsOn: [broker]']),
        ctr('broker', ['image: busybox:1']),
        ctr('solo', ['image: busybox:1']),
      ),
    );
    const actual: ActualState = { images: [image('docker.io/library/busybox:1', dg('a'))], containers: [], volumes: [], unreachableRegistries: [] };
    expect(brief(planOf(d, actual))).toEqual([
      ['container:broker', 'broker: create (not present)', []],
      ['container:collector', 'collector: create (not present)', ['container:broker']],
      ['container:solo', 'solo: create (not present)', []],
      ['container:uploader', 'uploader: create (not present)', ['container:collector']],
    ]);
    // Broker already running: the collector needs no `after`.
    actual.containers.push(made(d, 'broker', dg('a')));
    expect(brief(planOf(d, actual)).find((s) => s[0] === 'container:collector')).toEqual(['container:collector', 'collector: create (not present)', []]);
  });

  it('a container waits while its dependency cannot start, and so do its dependents; running ones keep running', () => {
    const d = desiredOf(
      docs(
        ctr('web', ['image: busybox:1', 'restartPolicy: OnFailure']),
        ctr('ticker', ['image: busybox:1', 'dependsOn: [web]']),
        ctr('tail', ['image: busybox:1', 'dependsOn: [ticker]']),
      ),
    );
    const actual = converged(d);
    actual.containers = [made(d, 'web', dg('a'), { state: 'exited', exitCode: 2, finishedAt: NOW - S })];
    const steps = planOf(d, actual);
    expect(brief(steps)).toEqual([
      ['wait:container:web', 'web: restart in 9s (exited with code 2; restartPolicy OnFailure; back-off 10s)', []],
      ['wait:container:ticker', 'ticker: create waits for web (not running)', []],
      ['wait:container:tail', 'tail: create waits for ticker (not running)', []],
    ]);
    expect(steps[0]).toMatchObject({ kind: 'wait', object: 'web', until: NOW + 9 * S });
    // A dependency that ran to completion (exit 0, not restarted) counts as up.
    actual.containers = [made(d, 'web', dg('a'), { state: 'exited', exitCode: 0, finishedAt: NOW - S })];
    expect(brief(planOf(d, actual))).toEqual([
      ['container:ticker', 'ticker: create (not present)', []],
      ['container:tail', 'tail: create (not present)', ['container:ticker']],
    ]);
  });

  describe('exited containers, by restart policy', () => {
    const table: Array<[policy: string, exit: Partial<ActualContainer>, expected: string | null]> = [
      ['Always', { exitCode: 0 }, 'web: restart (exited with code 0; restartPolicy Always; restart 1)'],
      ['Always', { exitCode: 1 }, 'web: restart (exited with code 1; restartPolicy Always; restart 1)'],
      ['OnFailure', { exitCode: 0 }, null],
      ['OnFailure', { exitCode: 3 }, 'web: restart (exited with code 3; restartPolicy OnFailure; restart 1)'],
      ['OnFailure', {}, 'web: restart (exited (status unknown); restartPolicy OnFailure; restart 1)'],
      ['OnFailure', { exitCode: 137, oomKilled: true }, 'web: restart (OOM-killed; restartPolicy OnFailure; restart 1)'],
      ['Never', { exitCode: 1 }, null],
      ['Never', { exitCode: 137, oomKilled: true }, null],
    ];
    for (const [policy, exit, expected] of table) {
      it(`${policy}, ${JSON.stringify(exit)} → ${expected ?? 'stays exited'}`, () => {
        const d = desiredOf(ctr('web', ['image: busybox:1', `restartPolicy: ${policy}`]));
        const actual = converged(d);
        actual.containers[0] = { ...actual.containers[0]!, state: 'exited', finishedAt: NOW - 11 * S, startedAt: NOW - 20 * S, ...exit };
        const steps = planOf(d, actual);
        if (expected === null) expect(steps).toEqual([]);
        else expect(steps).toEqual([{ kind: 'start', id: 'container:web', after: [], container: 'web', backoffStreak: 1, reason: expected }]);
      });
    }
  });

  describe('restart back-off: 10 s doubling to 5 min, reset after 10 min up', () => {
    const table: Array<[backoffStreak: number, upMs: number, delayMs: number, next: number]> = [
      [0, 5 * S, 10 * S, 1],
      [1, 5 * S, 20 * S, 2],
      [2, 5 * S, 40 * S, 3],
      [3, 5 * S, 80 * S, 4],
      [4, 5 * S, 160 * S, 5],
      [5, 5 * S, 300 * S, 6],
      [12, 5 * S, 300 * S, 13],
      [12, 9 * MIN, 300 * S, 13],
      [12, 10 * MIN, 10 * S, 1],
    ];
    for (const [backoffStreak, upMs, delayMs, next] of table) {
      it(`after ${backoffStreak} restarts and ${upMs / S}s up: waits ${delayMs / S}s, then restart ${next}`, () => {
        const d = desiredOf(ctr('web', ['image: busybox:1']));
        const finishedAt = NOW - 1000 * S;
        const actual = converged(d);
        actual.containers[0] = { ...actual.containers[0]!, state: 'exited', exitCode: 1, backoffStreak, startedAt: finishedAt - upMs, finishedAt };
        const justBefore = planOf(d, actual, finishedAt + delayMs - 1);
        expect(justBefore).toMatchObject([{ kind: 'wait', id: 'wait:container:web', until: finishedAt + delayMs }]);
        expect(justBefore.filter(isChange)).toEqual([]);
        expect(planOf(d, actual, finishedAt + delayMs)).toMatchObject([{ kind: 'start', backoffStreak: next }]);
      });
    }
  });

  it('OOM-killed under Always: restarted, and the reason says OOM-killed', () => {
    const d = desiredOf(ctr('web', ['image: busybox:1', 'resources: {memory: 16Mi}']));
    const actual = converged(d);
    actual.containers[0] = {
      ...actual.containers[0]!,
      state: 'exited',
      exitCode: 137,
      oomKilled: true,
      backoffStreak: 1,
      finishedAt: NOW - 30 * S,
      startedAt: NOW - 31 * S,
    };
    expect(planOf(d, actual).map((s) => s.reason)).toEqual(['web: restart (OOM-killed; restartPolicy Always; restart 2)']);
  });

  it('an exit status lost with its supervisor (a reboot) restarts at once, without growing the back-off', () => {
    const d = desiredOf(ctr('web', ['image: busybox:1']));
    const actual = converged(d);
    actual.containers[0] = {
      ...actual.containers[0]!,
      state: 'exited',
      exitCode: 255,
      exitLost: true,
      backoffStreak: 3,
      finishedAt: NOW - 1,
      startedAt: NOW - 5 * MIN,
    };
    const steps = planOf(d, actual);
    expect(steps).toMatchObject([{ kind: 'start', backoffStreak: 3 }]);
    expect(steps[0]!.reason).toContain('exit status lost');
  });

  it('pullPolicy Always with its registry unreachable: the update check waits, the containers on the present image run', () => {
    const d = desiredOf(docs(img('app', `${REG}/app:1`, ', pullPolicy: Always'), ctr('web', ['image: app'])));
    const actual = { ...converged(d), unreachableRegistries: [REG] };
    const steps = planOf(d, actual);
    expect(brief(steps)).toEqual([['wait:image:app', `app: update check waits (registry ${REG} unreachable; keeping sha256:${'a'.repeat(12)})`, []]]);
    expect(steps.filter(isChange)).toEqual([]);
  });

  it('registry unreachable: only the steps needing it wait; everything else converges', () => {
    const far = 'registry.example.com/acme/app:2';
    const d = desiredOf(
      docs(
        img('app', far),
        ctr('local', ['image: busybox:1.36', 'env: {A: b}']),
        ctr('remote', ['image: app']),
        ctr('after-remote', ['image: busybox:1.36', 'dependsOn: [remote]']),
      ),
    );
    const actual: ActualState = { images: [], containers: [], volumes: [], unreachableRegistries: ['registry.example.com'] };
    const steps = planOf(d, actual);
    expect(brief(steps)).toEqual([
      ['pull:docker.io/library/busybox:1.36', 'docker.io/library/busybox:1.36: pull (not present)', []],
      ['container:local', 'local: create (not present)', ['pull:docker.io/library/busybox:1.36']],
      ['wait:image:app', 'app: pull waits (not present; registry registry.example.com unreachable)', []],
      ['wait:container:remote', 'remote: create waits for image app (registry registry.example.com unreachable)', []],
      ['wait:container:after-remote', 'after-remote: create waits for remote (not running)', []],
    ]);
    // The app image is present but a newer one is wanted: the old container keeps running meanwhile.
    const running = desiredOf(docs(img('app', 'registry.example.com/acme/app:1'), ctr('remote', ['image: app'])));
    const changed = desiredOf(docs(img('app', far), ctr('remote', ['image: app'])));
    const s2 = planOf(changed, { ...converged(running), unreachableRegistries: ['registry.example.com'] });
    expect(s2.filter(isChange)).toEqual([]);
    expect(s2.map((s) => s.reason)).toEqual([
      'app: pull waits (not present; registry registry.example.com unreachable)',
      'remote: recreate waits for image app (registry registry.example.com unreachable)',
    ]);
  });

  it('a missing blob or snapshot: pull to repair; the running container is left alone', () => {
    const d = desiredOf(DEMO());
    for (const [over, why] of [
      [{ blobsPresent: false }, 'repair: blobs missing'],
      [{ unpacked: false }, 'repair: snapshots missing'],
    ] as const) {
      const actual = converged(d);
      actual.images[0] = image(BB, dg('a'), over);
      const steps = planOf(d, actual);
      expect(brief(steps)).toEqual([[`pull:${BB}`, `busybox: pull (${why})`, []]]);
      expect(steps[0]).toMatchObject({ kind: 'pull', repair: true });
      // A container that must be (re)made from it waits for the repair.
      actual.containers = actual.containers.filter((c) => c.name !== 'ticker');
      expect(brief(planOf(d, actual))[1]).toEqual(['container:ticker', 'ticker: create (not present)', [`pull:${BB}`]]);
    }
  });

  it('an imported image (blobs present, never unpacked) is unpacked, even while its registry is unreachable', () => {
    const d = desiredOf(DEMO());
    const actual: ActualState = {
      images: [image(BB, dg('a'), { unpacked: false, unpackedBefore: false })],
      containers: [],
      volumes: ['web-data'],
      unreachableRegistries: [BB.split('/')[0]!],
    };
    const steps = planOf(d, actual);
    expect(brief(steps)).toEqual([
      [`pull:${BB}`, 'busybox: pull (unpack: not unpacked yet)', []],
      ['container:web', 'web: create (not present)', [`pull:${BB}`]],
      ['container:ticker', 'ticker: create (not present)', ['container:web', `pull:${BB}`]],
    ]);
    // A missing blob does need the registry: then the pull waits.
    actual.images[0] = image(BB, dg('a'), { blobsPresent: false, unpacked: false });
    expect(planOf(d, actual)[0]).toMatchObject({ kind: 'wait', id: 'wait:image:busybox' });
  });

  it("a restart waits for the repair of its image's snapshots (its writable layer sits on them)", () => {
    const d = desiredOf(ctr('web', ['image: busybox:1']));
    const actual = converged(d);
    actual.images[0] = { ...actual.images[0]!, unpacked: false };
    actual.containers[0] = { ...actual.containers[0]!, state: 'exited', exitCode: 1, finishedAt: NOW - MIN };
    expect(brief(planOf(d, actual))).toEqual([
      ['pull:docker.io/library/busybox:1', 'docker.io/library/busybox:1: pull (repair: snapshots missing)', []],
      ['container:web', 'web: restart (exited with code 1; restartPolicy Always; restart 1)', ['pull:docker.io/library/busybox:1']],
    ]);
  });

  it("an image record deleted behind berth's back: pulled again, containers left alone", () => {
    const d = desiredOf(DEMO());
    const actual = converged(d);
    actual.images = [];
    expect(brief(planOf(d, actual))).toEqual([[`pull:${BB}`, 'busybox: pull (not present)', []]]);
  });

  it("drift: container removed behind berth's back → create; created but not started → start; volume gone → create it", () => {
    const d = desiredOf(DEMO());
    const actual = converged(d);
    actual.containers[0] = { ...actual.containers[0]!, state: 'absent' };
    actual.containers[1] = { ...actual.containers[1]!, state: 'created', backoffStreak: 2 };
    actual.volumes = [];
    expect(brief(planOf(d, actual))).toEqual([
      ['volume:web-data', 'web-data: create volume (not present)', []],
      ['container:web', 'web: create (container missing: removed outside berth)', ['volume:web-data']],
      ['container:ticker', 'ticker: start (created, not running)', ['container:web']],
    ]);
    expect(planOf(d, actual)[2]).toMatchObject({ kind: 'start', backoffStreak: 2 });
    // The event says Repaired from this flag, not from the reason's words.
    expect(planOf(d, actual)[1]).toMatchObject({ kind: 'create', repair: true });
    expect(planOf(d, { ...actual, containers: actual.containers.slice(1) })[1]).not.toHaveProperty('repair');
  });

  it('a container record without the applied spec still gets a reason', () => {
    const before = desiredOf(DEMO('hello'));
    const actual = converged(before);
    delete actual.containers[0]!.appliedSpec;
    expect(planOf(desiredOf(DEMO('bye')), actual)[0]!.reason).toBe('web: recreate (spec changed)');
  });

  it('desiredImages lists each needed image once: Image objects, then direct references', () => {
    const d = desiredOf(
      docs(img('bb', BB, ', pullPolicy: Always, platform: linux/arm64'), ctr('a', ['image: bb']), ctr('b', [`image: "${BB}"`]), ctr('c', ['image: alpine:3'])),
    );
    expect(desiredImages(d)).toEqual([
      { ref: BB, name: 'bb', pullPolicy: 'Always', platform: 'linux/arm64' },
      { ref: 'docker.io/library/alpine:3', name: 'docker.io/library/alpine:3', pullPolicy: 'IfNotPresent' },
    ]);
  });

  it('ids are stable across plans, and describePlan prints one line per step', () => {
    const d = desiredOf(DEMO());
    const empty: ActualState = { images: [], containers: [], volumes: [], unreachableRegistries: [] };
    expect(planOf(d, empty).map((s) => s.id)).toEqual(planOf(d, empty, NOW + 5 * MIN).map((s) => s.id));
    expect(describePlan(planOf(d, empty))).toBe(
      [
        '+ web-data: create volume (not present)',
        '↓ busybox: pull (not present)',
        `+ web: create (not present)  [after pull:${BB}, volume:web-data]`,
        `+ ticker: create (not present)  [after container:web, pull:${BB}]`,
      ].join('\n'),
    );
  });
});
