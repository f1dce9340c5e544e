/**
 * `node_modules/.bin/node bench/plan.ts`: the median time of a no-change plan() over 200 containers
 * and 50 images (goal: well under 100 ms), and, for scale, of loading + validating those manifests.
 * No disk beyond reading the generated files; no network.
 */
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadManifests } from '../src/manifest/load.ts';
import { createDocumentValidator } from '../src/manifest/schema.ts';
import { containerSpecHash, normaliseContainerSpec } from '../src/manifest/spec-hash.ts';
import { plan } from '../src/reconcile/plan.ts';
import { isChange, type ActualState } from '../src/reconcile/types.ts';

const CONTAINERS = 200;
const IMAGES = 50;
const RUNS = 101;

function manifests(): string {
  const out: string[] = [];
  for (let i = 0; i < IMAGES; i++) {
    out.push(`apiVersion: berth.dev/v1alpha1\nkind: Image\nmetadata: {name: img-${i}}\nspec: {ref: "127.0.0.1:5000/app-${i}:1.${i}"}\n`);
  }
  for (let i = 0; i < CONTAINERS; i += 10) out.push(`apiVersion: berth.dev/v1alpha1\nkind: Volume\nmetadata: {name: vol-${i}}\n`);
  for (let i = 0; i < CONTAINERS; i++) {
    out.push(
      [
        'apiVersion: berth.dev/v1alpha1',
        'kind: Container',
        `metadata: {name: c-${i}, labels: {app: bench}}`,
        'spec:',
        `  image: img-${i % IMAGES}`,
        `  command: [/bin/app, --id, "${i}"]`,
        `  env: {ID: "${i}", MODE: bench, LEVEL: ${i % 5}}`,
        `  mounts: [{type: volume, name: vol-${i - (i % 10)}, target: /data}, {type: tmpfs, target: /tmp, size: 16Mi}]`,
        `  resources: {memory: 64Mi, cpus: 0.25, pids: 64}`,
        i % 10 === 0 ? '' : `  dependsOn: [c-${i - (i % 10)}]`,
      ].join('\n'),
    );
  }
  return out.join('\n---\n');
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

const dir = await mkdtemp(join(tmpdir(), 'berth-bench-plan-'));
try {
  await writeFile(join(dir, 'bench.yaml'), manifests());
  const validator = await createDocumentValidator();
  const loadTimes: number[] = [];
  let desired = await loadManifests(dir, { validator, revision: false });
  for (let i = 0; i < 21; i++) {
    const t = performance.now();
    desired = await loadManifests(dir, { validator, revision: false });
    loadTimes.push(performance.now() - t);
  }
  const digest = (i: number) => `sha256:${i.toString(16).padStart(64, '0')}`;
  const imageIndex = new Map(desired.images.map((img, i) => [img.spec.ref, i] as const));
  const actual: ActualState = {
    images: desired.images.map((img, i) => ({ ref: img.spec.ref, targetDigest: digest(i), manifestDigest: digest(i), blobsPresent: true, unpacked: true })),
    containers: desired.containers.map((c) => {
      const d = digest(imageIndex.get(c.imageRef)!);
      return {
        name: c.metadata.name,
        specHash: containerSpecHash(c, d),
        imageRef: c.imageRef,
        imageDigest: d,
        appliedSpec: normaliseContainerSpec(c),
        state: 'running' as const,
        backoffStreak: 0,
        startedAt: Date.now() - 3_600_000,
      };
    }),
    volumes: desired.volumes.map((v) => v.metadata.name),
    unreachableRegistries: [],
  };
  const times: number[] = [];
  for (let i = 0; i < RUNS + 10; i++) {
    const t = performance.now();
    const steps = plan(desired, actual, Date.now());
    const ms = performance.now() - t;
    if (steps.some(isChange)) throw new Error(`a no-change plan has steps: ${steps.map((s) => s.reason).join('; ')}`);
    if (i >= 10) times.push(ms);
  }
  console.log(
    `plan (no change, ${CONTAINERS} containers, ${IMAGES} images): median ${median(times).toFixed(2)} ms over ${RUNS} runs (min ${Math.min(...times).toFixed(2)}, max ${Math.max(...times).toFixed(2)})`,
  );
  console.log(
    `load + validate the same manifests (${desired.containers.length + desired.images.length + desired.volumes.length} documents): median ${median(loadTimes).toFixed(1)} ms`,
  );
} finally {
  await rm(dir, { recursive: true, force: true });
}
