/**
 * What pulling asks of a registry: where a reference points, the small blobs (manifests, indexes,
 * configs) in memory, the big ones streamed into a content store. `RegistryClient` (registry.ts:
 * HTTP on undici, auth, mirrors, retries) implements it; the unit tests' in-memory registry
 * (test/fakes/registry.ts) does too.
 */
import type { ContentStore } from '../content/content.ts';
import type { ImageRef } from '../oci/reference.ts';
import type { Descriptor } from '../oci/types.ts';

export interface Resolved {
  /** Normalised reference, e.g. `127.0.0.1:5000/busybox:latest`. */
  name: string;
  ref: ImageRef;
  /** What the reference points at (an index or a manifest). */
  desc: Descriptor;
  /** The manifest bytes, when resolving had to GET them anyway. */
  bytes?: Buffer;
}

export interface BlobProgress {
  digest: string;
  /** Bytes in the ingest now. */
  offset: number;
  total: number;
}

export interface FetchResult {
  /** The blob was already committed: nothing fetched. */
  skipped: boolean;
  /** Offset a resumed download started from (0 if it started fresh). */
  resumedFrom: number;
  /** Bytes transferred over the network in this call. */
  transferred: number;
}

export interface ImageRegistry {
  /** Resolve a reference (string or parsed) to the descriptor it names. NotFound if it names nothing. */
  resolve(reference: string | ImageRef, signal?: AbortSignal): Promise<Resolved>;
  /** A manifest, index or config, in memory, verified against `desc`. */
  fetchSmall(ref: ImageRef, desc: Descriptor, signal?: AbortSignal): Promise<Buffer>;
  /** Stream a blob into `store`, verified and committed; one already committed is skipped. */
  fetchBlob(
    ref: ImageRef,
    desc: Descriptor,
    store: ContentStore,
    opts?: { signal?: AbortSignal; onProgress?: (p: BlobProgress) => void },
  ): Promise<FetchResult>;
  close(): Promise<void>;
}
