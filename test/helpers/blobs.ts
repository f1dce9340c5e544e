/** Blobs committed to a content store the way a pull commits them: a writer, a verified commit. */
import { createHash } from 'node:crypto';
import type { ContentStore } from '../../src/content/content.ts';

export interface CommittedBlob {
  digest: string;
  size: number;
}

/** Commit `data` (text or bytes) to `store`; its digest and size. */
export async function commitBlob(store: ContentStore, data: string | Uint8Array): Promise<CommittedBlob> {
  const bytes = Buffer.from(data);
  const digest = `sha256:${createHash('sha256').update(bytes).digest('hex')}`;
  const w = await store.writer({ ref: `test-${digest}`, expected: digest, total: bytes.length });
  await w.write(bytes);
  await w.commit(bytes.length, digest);
  return { digest, size: bytes.length };
}
