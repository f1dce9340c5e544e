/**
 * A whole device in memory for turn-level tests: real SQLite (in memory), the real Reconciler,
 * observe, plan and execute, on the fake content store, snapshotter, runtime and registry, with one
 * injected clock. Manifests are real files in a temporary directory. Needs no root.
 *
 * @example
 *   const w = await FakeWorld.create();
 *   w.registry.push('registry.test/app:1', await testImage('v1'));
 *   await w.writeManifests([container('web', 'registry.test/app:1')]);
 *   const report = await w.turn();
 */
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { stringify } from 'yaml';
import { defaultConfig } from '../../src/config/config.ts';
import { BlobFetches } from '../../src/images/blob-fetches.ts';
import { silentLogger } from '../../src/log.ts';
import { Metadata } from '../../src/metadata/metadata.ts';
import { formatPlatform, hostPlatform } from '../../src/oci/platform.ts';
import type { ReconcileDeps } from '../../src/reconcile/deps.ts';
import { Reconciler, type ReconcilerOptions, type TurnReport } from '../../src/reconcile/reconciler.ts';
import type { FetchResult } from '../../src/remotes/image-registry.ts';
import type { ContainerRuntime } from '../../src/runtime/container-runtime.ts';
import { buildImage, type BuiltImage } from '../helpers/images.ts';
import { MemoryContentStore } from './content-store.ts';
import { MemoryRegistry } from './registry.ts';
import { FakeRuntime } from './runtime.ts';
import { MemorySnapshotter } from './snapshotter.ts';

export const API = 'berth.dev/v1alpha1';

/** A one-layer image for the host's platform whose single file says `version`. */
export function testImage(version: string): Promise<BuiltImage> {
  // Owned by whoever runs the test, so applying the layer needs no root.
  const owner = { uid: process.getuid?.() ?? 0, gid: process.getgid?.() ?? 0 };
  return buildImage({
    platform: formatPlatform(hostPlatform()),
    layers: [{ files: { version: { content: `${version}\n`, ...owner } } }],
    config: { Cmd: ['/app'] },
  });
}

/** A Container document. */
export function container(name: string, image: string, spec: Record<string, unknown> = {}): object {
  return { apiVersion: API, kind: 'Container', metadata: { name }, spec: { image, command: ['/app'], network: 'none', restartPolicy: 'Always', ...spec } };
}

export class FakeWorld {
  /**
   * The clock every part reads (ms since the epoch); `advance` moves it. It starts in the past, so
   * garbage collection (which reads the real clock) never finds the fakes' objects too young to go.
   */
  t = Date.parse('2020-01-01T00:00:00Z');
  readonly now = () => this.t;
  readonly content = new MemoryContentStore({ now: this.now });
  readonly registry = new MemoryRegistry();
  readonly runtime: FakeRuntime;
  readonly snapshotter: MemorySnapshotter;
  readonly metadata: Metadata;
  readonly deps: ReconcileDeps;
  readonly manifests: string;
  readonly root: string;
  private reconciler?: Reconciler;

  private constructor(root: string, runtime?: ContainerRuntime, metadataFile?: boolean) {
    this.root = root;
    this.metadata = Metadata.open(metadataFile ? join(root, 'metadata.db') : ':memory:');
    this.snapshotter = new MemorySnapshotter(join(root, 'snapshots'), { now: this.now });
    this.runtime = new FakeRuntime({ root, now: this.now });
    this.manifests = join(root, 'manifests');
    this.deps = {
      config: defaultConfig({ root }),
      log: silentLogger(),
      metadata: this.metadata,
      content: this.content,
      snapshotter: this.snapshotter,
      runtime: runtime ?? this.runtime,
      registry: async () => this.registry,
      fetches: new BlobFetches<FetchResult>(),
      now: this.now,
    };
  }

  /**
   * `runtime`: run the containers with another runtime (the root-only tests pass the real one, on
   * `<root>/berth`) instead of the fake; `w.runtime` is then unused. `metadataFile`: keep the
   * metadata in `<root>/metadata.db` (as berth does) rather than in memory.
   */
  static async create(opts: { runtime?: (root: string) => Promise<ContainerRuntime>; metadataFile?: boolean } = {}): Promise<FakeWorld> {
    const root = await mkdtemp(join(tmpdir(), 'berth-world-'));
    return new FakeWorld(root, await opts.runtime?.(join(root, 'berth')), opts.metadataFile);
  }

  advance(ms: number): void {
    this.t += ms;
  }

  /** Replace the manifests with these documents. */
  async writeManifests(docs: object[]): Promise<void> {
    await rm(this.manifests, { recursive: true, force: true });
    await mkdir(this.manifests, { recursive: true });
    await writeFile(join(this.manifests, 'app.yaml'), docs.map((d) => stringify(d)).join('---\n'));
  }

  /** One reconcile turn, by the same Reconciler each time (as the daemon keeps one). */
  turn(opts: Partial<ReconcilerOptions> = {}): Promise<TurnReport> {
    this.reconciler ??= new Reconciler(this.deps, { manifests: this.manifests, holder: 'unit test', ...opts });
    return this.reconciler.turn(AbortSignal.timeout(30_000));
  }

  /** What each step of a report did, as `kind:result`, for compact assertions. */
  static kinds(report: TurnReport): string[] {
    return report.outcomes.map((o) => `${o.step.kind}:${o.result}`);
  }

  async close(): Promise<void> {
    this.metadata.close();
    await rm(this.root, { recursive: true, force: true });
  }
}
