/**
 * Compose's `depends_on: {x: {condition: service_healthy}}`, which becomes berth's
 * `dependsOn: [{name: x, condition: Healthy}]`: the pure plan starts the dependant only once x runs
 * and its health check passed. Until a probe has decided, the wait says which dependencies it
 * awaits (berth apply turns again for them); an unhealthy dependency holds it with no such promise.
 */
import { beforeAll, describe, expect, it } from 'vitest';
import { checkManifests } from '../../src/manifest/load.ts';
import { createDocumentValidator, type DocumentValidator } from '../../src/manifest/schema.ts';
import { containerSpecHash, normaliseContainerSpec } from '../../src/manifest/spec-hash.ts';
import type { DesiredState } from '../../src/manifest/types.ts';
import { plan } from '../../src/reconcile/plan.ts';
import type { ActualContainer, ActualState, Step } from '../../src/reconcile/types.ts';
import { ComposeDirs } from './helpers.ts';

const dirs = new ComposeDirs();
let validator: DocumentValidator;
beforeAll(async () => {
  validator = await createDocumentValidator();
  await dirs.setUp();
});

const NOW = Date.UTC(2026, 0, 1, 12, 0, 0);
const DIGEST = `sha256:${'a'.repeat(64)}`;

const COMPOSE = `services:
  web:
    image: 127.0.0.1:5000/busybox:latest
    healthcheck: {test: [CMD, "true"]}
  worker:
    image: 127.0.0.1:5000/busybox:latest
    depends_on:
      web: {condition: service_healthy}
      cache: {condition: service_started}
  cache:
    image: 127.0.0.1:5000/busybox:latest
`;

async function desired(): Promise<DesiredState> {
  const dir = await dirs.dir({ 'compose.yaml': COMPOSE });
  const r = await checkManifests(dir, { validator, revision: false });
  expect(r.problems).toEqual([]);
  return r.state!;
}

function running(d: DesiredState, name: string, over: Partial<ActualContainer> = {}): ActualContainer {
  const doc = d.containers.find((c) => c.metadata.name === name)!;
  return {
    name,
    specHash: containerSpecHash(doc, DIGEST),
    imageRef: doc.imageRef,
    imageDigest: DIGEST,
    appliedSpec: normaliseContainerSpec(doc),
    state: 'running',
    backoffStreak: 0,
    ...over,
  };
}

const actual = (containers: ActualContainer[]): ActualState => ({
  images: [{ ref: '127.0.0.1:5000/busybox:latest', targetDigest: DIGEST, manifestDigest: DIGEST, blobsPresent: true, unpacked: true }],
  containers,
  volumes: [],
  unreachableRegistries: [],
});
const worker = (steps: Step[]) => steps.find((s) => s.id.endsWith(':worker'))!;

describe('a dependency with condition Healthy', () => {
  it("without a healthcheck in the file: a note says the dependant waits for the image's", async () => {
    const { problems, notes } = await dirs.read({
      'compose.yaml': COMPOSE.replace(
        '      web: {condition: service_healthy}',
        '      web: {condition: service_healthy}\n      cache2: {condition: service_healthy}',
      ).replace('  cache:\n', '  cache2:\n    image: 127.0.0.1:5000/busybox:latest\n  cache:\n'),
    });
    expect(problems).toEqual([]);
    expect(notes).toEqual([
      expect.stringMatching(
        /^compose\.yaml:9:27: services\.worker\.depends_on\.cache2\.condition: cache2 has no healthcheck here: worker waits for its image's HEALTHCHECK to pass, and without one it never starts$/,
      ),
    ]);
  });

  it('started in the same plan: the dependant waits for its check (a plain dependency is only ordered after)', async () => {
    const d = await desired();
    const steps = plan(d, actual([]), NOW);
    expect(worker(steps)).toMatchObject({ kind: 'wait', reason: 'worker: create waits for web to be healthy (not checked yet)', awaitsHealth: ['web'] });
    expect(steps.filter((s) => s.kind === 'create').map((s) => s.id)).toEqual(['container:cache', 'container:web']);
  });

  it('running, its check not passed yet: the dependant waits for it', async () => {
    const d = await desired();
    const w = worker(plan(d, actual([running(d, 'web', { health: 'starting' }), running(d, 'cache')]), NOW));
    expect(w).toMatchObject({ kind: 'wait', reason: 'worker: create waits for web to be healthy (not checked yet)', awaitsHealth: ['web'] });
  });

  it('running and healthy: the dependant is created', async () => {
    const d = await desired();
    expect(worker(plan(d, actual([running(d, 'web', { health: 'healthy' }), running(d, 'cache')]), NOW))).toMatchObject({ kind: 'create', after: [] });
  });

  it('unhealthy: the dependant waits, with no promise of a verdict to come', async () => {
    const d = await desired();
    const w = worker(plan(d, actual([running(d, 'web', { health: 'unhealthy', unhealthySince: NOW - 1000 }), running(d, 'cache')]), NOW));
    expect(w).toMatchObject({ kind: 'wait', reason: 'worker: create waits for web to be healthy (unhealthy)' });
    expect(w).not.toHaveProperty('awaitsHealth');
  });

  it('not running at all: as any dependency, and a plain one that is not running either', async () => {
    const d = await desired();
    const w = worker(
      plan(
        d,
        actual([
          running(d, 'web', { state: 'exited', exitCode: 1, finishedAt: NOW - 1000 }),
          running(d, 'cache', { state: 'exited', exitCode: 1, finishedAt: NOW - 1000 }),
        ]),
        NOW,
      ),
    );
    expect(w).toMatchObject({ kind: 'wait', reason: 'worker: create waits for web, cache (not running)' });
    expect(w).not.toHaveProperty('awaitsHealth');
  });
});
