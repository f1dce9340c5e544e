/**
 * The comparison lab the benches (and anyone measuring by hand) use: Debian's docker-registry on
 * a free loopback port with the lab images pushed to it. Everything it starts lives in temp dirs;
 * the images it builds are cached (see `labCacheDir`). Pair it with `startContainerd`
 * (./containerd.ts) to compare against containerd.
 *
 * @example
 *   const lab = await startLab({ images: ['busybox:latest', 'debian:multi'] });
 *   … berth pull ${lab.ref('debian:multi')} …
 *   await lab.stop();
 */
import { join } from 'node:path';
import { pushImage, type BuiltImage } from '../helpers/images.ts';
import { startRegistry, type RunningRegistry } from '../helpers/registry.ts';
import { busyboxImage } from './busybox-image.ts';
import { debianMultiImage } from './debian-image.ts';

type BuildOptions = { cacheDir: string; signal?: AbortSignal; log?: (msg: string) => void };

const BUILD = {
  'busybox:latest': () => busyboxImage(),
  'debian:multi': (o: BuildOptions) => debianMultiImage(o.cacheDir, 'gzip', o),
  'debian:multi-zstd': (o: BuildOptions) => debianMultiImage(o.cacheDir, 'zstd', o),
} satisfies Record<string, (o: BuildOptions) => Promise<BuiltImage>>;

export type LabImage = keyof typeof BUILD;
export const LAB_IMAGES = Object.keys(BUILD) as LabImage[];

export interface Lab {
  registry: RunningRegistry;
  /** The full reference of a lab image in this lab's registry, e.g. `127.0.0.1:41234/debian:multi`. */
  ref(image: LabImage): string;
  stop(): Promise<void>;
}

/**
 * Where built lab images are kept between runs: `$BERTH_LAB_CACHE`, else
 * `$XDG_CACHE_HOME/berth-lab`, else `/var/cache/berth-lab` (shared by every checkout on the machine).
 */
export function labCacheDir(env: NodeJS.ProcessEnv = process.env): string {
  if (env.BERTH_LAB_CACHE) return env.BERTH_LAB_CACHE;
  if (env.XDG_CACHE_HOME) return join(env.XDG_CACHE_HOME, 'berth-lab');
  return '/var/cache/berth-lab';
}

/** Start a registry and push `images` to it (building and caching them first if needed). */
export async function startLab(opts: { images: readonly LabImage[]; cacheDir?: string; signal?: AbortSignal; log?: (msg: string) => void }): Promise<Lab> {
  const cacheDir = opts.cacheDir ?? labCacheDir();
  const registry = await startRegistry();
  try {
    for (const image of opts.images) {
      opts.signal?.throwIfAborted();
      const [repo, tag] = image.split(':') as [string, string];
      // One image in memory at a time: debian:multi is a few hundred MB.
      await pushImage(registry.url, repo, tag, await BUILD[image]({ cacheDir, signal: opts.signal, log: opts.log }));
    }
  } catch (err) {
    await registry.stop();
    throw err;
  }
  return { registry, ref: (image) => `${registry.host}/${image}`, stop: () => registry.stop() };
}
