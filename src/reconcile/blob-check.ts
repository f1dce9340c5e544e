/**
 * Is a blob still what it was? observe() asks every turn, so the answer must be cheap: a stat
 * (present, and the size its descriptor says). A daemon also re-hashes a blob the first time it
 * sees it (a boot-time verify) and again whenever its inode, size, mtime or ctime changed since it
 * last hashed clean: a blob is written once and made read-only, so an overwrite (which needs a
 * chmod first) always changes one of them, while an unchanged blob is never read twice.
 */
import { stat } from 'node:fs/promises';
import type { ContentStore } from '../content/content.ts';
import { verifyBlob } from '../content/verify.ts';

export type BlobCondition = 'ok' | 'missing' | 'corrupt';

export class BlobChecker {
  /** digest → stat signature when it last hashed clean. */
  private readonly verified = new Map<string, string>();
  readonly rehash: boolean;

  /** `rehash: false` (one-shot `apply`, `plan`): presence and size only. */
  constructor(opts: { rehash: boolean }) {
    this.rehash = opts.rehash;
  }

  async check(store: ContentStore, digest: string, size: number | undefined, signal?: AbortSignal): Promise<BlobCondition> {
    let st;
    try {
      st = await stat(store.blobPath(digest));
    } catch (err: any) {
      if (err?.code === 'ENOENT') return 'missing';
      throw err;
    }
    if (size !== undefined && st.size !== size) return 'corrupt';
    if (!this.rehash) return 'ok';
    const signature = `${st.ino}:${st.size}:${st.mtimeMs}:${st.ctimeMs}`;
    if (this.verified.get(digest) === signature) return 'ok';
    this.verified.delete(digest);
    const result = await verifyBlob(store, digest, st.size, signal);
    if (result.ok) {
      this.verified.set(digest, signature);
      return 'ok';
    }
    signal?.throwIfAborted();
    return result.error && /ENOENT/.test(result.error) ? 'missing' : 'corrupt';
  }
}
