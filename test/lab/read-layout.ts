/**
 * Read back an image that `writeOciLayout` (test/helpers/images.ts) wrote: the layout's one
 * tagged manifest with its config and layers, as a BuiltImage that `pushImage` can push.
 */
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { BuiltImage, Desc } from '../helpers/images.ts';

export async function readOciLayout(dir: string): Promise<BuiltImage> {
  const blob = (d: Desc) => readFile(join(dir, 'blobs', 'sha256', d.digest.slice('sha256:'.length)));
  const index = JSON.parse(await readFile(join(dir, 'index.json'), 'utf8')) as { manifests: Desc[] };
  const root = index.manifests[0];
  if (!root || index.manifests.length !== 1) throw new Error(`${dir}: expected one manifest in index.json`);
  const rootBytes = await blob(root);
  const manifest = JSON.parse(rootBytes.toString('utf8')) as { config: Desc; layers: Desc[] };
  const blobs = new Map<string, Buffer>([[root.digest, rootBytes]]);
  for (const d of [manifest.config, ...manifest.layers]) blobs.set(d.digest, await blob(d));
  return { root, rootBytes, blobs, config: manifest.config, layers: manifest.layers };
}
