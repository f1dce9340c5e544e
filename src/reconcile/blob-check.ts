/**
 * Is a blob still what it was? observe() asks every turn, so the answer must be cheap: a stat
 * (present, and the size its descriptor says). A daemon also re-hashes a blob whenever its inode,
 * size, mtime or ctime changed since it last hashed clean: a blob is written once and made
 * read-only, so an overwrite (which needs a chmod first) always changes one of them, while an
 * unchanged blob is never read twice. The first hash of each blob (its baseline) is spread over
 * turns by a byte budget, so a boot with gigabytes of images starts its containers without reading
 * them all first.
 */
import { stat } from 'node:fs/promises';
import type { ContentStore } from '../content/content.ts';
import { verifyBlob } from '../content/verify.ts';

export type BlobCondition = 'ok' | 'missing' | 'corrupt';

export class BlobChecker {
  /** digest → stat signature when it last hashed clean. */
  private readonly verified = new Map<string, string>();
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
  beginTurn(): void {
    this.budget = this.baselineBytesPerTurn;
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
    const known = this.verified.get(digest);
    if (known === signature) return 'ok';
    if (known === undefined) {
      // No baseline yet: hash it when this turn's budget allows, else in a later turn.
      if (this.budget <= 0) return 'ok';
      this.budget -= st.size;
    }
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
