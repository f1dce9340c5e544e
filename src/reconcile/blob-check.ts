/**
 * Is a blob still what it was? observe() asks every turn, so the answer must be cheap: the store's
 * info (present, and the size its descriptor says). A daemon also re-hashes a blob whenever its
 * `Info.version` (the local store: inode, size, mtime and ctime) changed since it last hashed clean: a blob is written once and made
 * read-only, so an overwrite (which needs a chmod first) always changes one of them, while an
 * unchanged blob is never read twice. The first hash of each blob (its baseline) is spread over
 * turns by a byte budget, so a boot with gigabytes of images starts its containers without reading
 * them all first.
 */
import type { ContentStore } from '../content/content.ts';
import { verifyBlob } from '../content/verify.ts';
import { isKind } from '../errors.ts';
import type { ImageRecord } from '../metadata/metadata.ts';
import { parseManifest } from '../oci/types.ts';

export type BlobCondition = 'ok' | 'missing' | 'corrupt';

export class BlobChecker {
  /** digest → stat signature when it last hashed clean. */
  private readonly verified = new Map<string, string>();
  /** The blobs each image manifest names (manifests are immutable: read each once). */
  private readonly manifestBlobs = new Map<string, Array<{ digest: string; size?: number }>>();
  readonly rehash: boolean;
  private readonly baselineBytesPerTurn: number;
  private budget: number;

  /** `rehash: false` (one-shot `apply`, `plan`): presence and size only. */
  constructor(opts: { rehash: boolean; baselineBytesPerTurn?: number }) {
    this.rehash = opts.rehash;
    this.baselineBytesPerTurn = opts.baselineBytesPerTurn ?? 64 << 20;
    this.budget = this.baselineBytesPerTurn;
  }

  /** A new turn: a new budget for first hashes. */
  /**
   * The blobs an image needs: its manifest, config and layers (with sizes where a descriptor gives
   * one). Undefined if the manifest cannot be read or parsed (then the image needs repair).
   */
  async blobsOf(store: ContentStore, rec: ImageRecord): Promise<Array<{ digest: string; size?: number }> | undefined> {
    const hit = this.manifestBlobs.get(rec.manifestDigest);
    if (hit) return hit;
    try {
      const manifest = parseManifest(await store.readBlob(rec.manifestDigest), `image ${rec.name}`);
      const blobs = [
        { digest: rec.manifestDigest },
        { digest: manifest.config.digest, size: manifest.config.size },
        ...manifest.layers.map((l) => ({ digest: l.digest, size: l.size })),
      ];
      this.manifestBlobs.set(rec.manifestDigest, blobs);
      return blobs;
    } catch (err) {
      if (isKind(err, 'NotFound') || isKind(err, 'Corrupt') || isKind(err, 'InvalidArgument')) return undefined;
      throw err;
    }
  }

  /** Read the manifest again next time (it, or a blob it names, was found corrupt). */
  forgetManifest(digest: string): void {
    this.manifestBlobs.delete(digest);
  }

  beginTurn(): void {
    this.budget = this.baselineBytesPerTurn;
  }

  async check(store: ContentStore, digest: string, size: number | undefined, signal?: AbortSignal): Promise<BlobCondition> {
    let st;
    try {
      st = await store.info(digest);
    } catch (err) {
      if (isKind(err, 'NotFound')) return 'missing';
      throw err;
    }
    if (size !== undefined && st.size !== size) return 'corrupt';
    if (!this.rehash) return 'ok';
    // A store that cannot tell whether bytes changed gets every blob hashed each time.
    const signature = st.version;
    const known = signature === undefined ? undefined : this.verified.get(digest);
    if (known === signature) return 'ok';
    if (known === undefined) {
      // No baseline yet: hash it when this turn's budget allows, else in a later turn.
      if (this.budget <= 0) return 'ok';
      this.budget -= st.size;
    }
    this.verified.delete(digest);
    const result = await verifyBlob(store, digest, st.size, signal);
    if (result.ok) {
      if (signature !== undefined) this.verified.set(digest, signature);
      return 'ok';
    }
    signal?.throwIfAborted();
    return result.missing ? 'missing' : 'corrupt';
  }
}
