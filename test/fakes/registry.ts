/**
 * An in-memory registry for unit tests: images built by test/helpers/images.ts are pushed under a
 * reference, resolved and fetched without a network. `down` makes every call fail as an
 * unreachable registry does (Unavailable), so offline paths can be driven.
 */
import type { ContentStore } from '../../src/content/content.ts';
import { isKind, notFound, unavailable } from '../../src/errors.ts';
import { formatReference, parseReference, type ImageRef } from '../../src/oci/reference.ts';
import type { Descriptor } from '../../src/oci/types.ts';
import type { BlobProgress, FetchResult, ImageRegistry, Resolved } from '../../src/remotes/image-registry.ts';
import type { BuiltImage } from '../helpers/images.ts';

export class MemoryRegistry implements ImageRegistry {
  private readonly tags = new Map<string, BuiltImage>();
  private readonly blobs = new Map<string, Buffer>();
  /** Unreachable: every call fails with Unavailable. */
  down = false;
  /** Digests of the blobs streamed into a store, in order. */
  readonly fetched: string[] = [];

  /** Make `reference` point at `image` (a later push moves the tag). */
  push(reference: string, image: BuiltImage): void {
    this.tags.set(formatReference(parseReference(reference)), image);
    for (const [digest, bytes] of image.blobs) this.blobs.set(digest, bytes);
  }

  private reachable(what: string): void {
    if (this.down) throw unavailable(`${what}: registry unreachable`);
  }

  async resolve(reference: string | ImageRef, signal?: AbortSignal): Promise<Resolved> {
    signal?.throwIfAborted();
    const ref = typeof reference === 'string' ? parseReference(reference) : reference;
    const name = formatReference(ref);
    this.reachable(`resolve ${name}`);
    const image = this.tags.get(name);
    if (!image) throw notFound(`${name}: not found`);
    return { name, ref, desc: image.root as Descriptor, bytes: image.rootBytes };
  }

  private blob(ref: ImageRef, desc: Descriptor): Buffer {
    this.reachable(`fetch ${formatReference(ref)} ${desc.digest}`);
    const bytes = this.blobs.get(desc.digest);
    if (!bytes) throw notFound(`${formatReference(ref)}: blob ${desc.digest} not found`);
    return bytes;
  }

  async fetchSmall(ref: ImageRef, desc: Descriptor): Promise<Buffer> {
    return this.blob(ref, desc);
  }

  async fetchBlob(
    ref: ImageRef,
    desc: Descriptor,
    store: ContentStore,
    opts: { signal?: AbortSignal; onProgress?: (p: BlobProgress) => void } = {},
  ): Promise<FetchResult> {
    const present = await store.info(desc.digest).then(
      () => true,
      (err) => (isKind(err, 'NotFound') ? false : Promise.reject(err)),
    );
    if (present) return { skipped: true, resumedFrom: 0, transferred: 0 };
    const bytes = this.blob(ref, desc);
    const w = await store.writer({ ref: `fetch-${desc.digest}`, expected: desc.digest, total: desc.size, signal: opts.signal });
    try {
      await w.write(bytes);
      opts.onProgress?.({ digest: desc.digest, offset: bytes.length, total: desc.size });
      await w.commit(desc.size, desc.digest);
    } finally {
      await w.close();
    }
    this.fetched.push(desc.digest);
    return { skipped: false, resumedFrom: 0, transferred: bytes.length };
  }

  async close(): Promise<void> {}
}
