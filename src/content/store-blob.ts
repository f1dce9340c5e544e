/** Put a small, already-verified blob (a manifest, index or config) into the content store. */
import type { ContentStore } from './content.ts';
import { isKind } from '../errors.ts';

export async function storeBlob(store: ContentStore, ref: string, digest: string, bytes: Buffer, signal?: AbortSignal): Promise<void> {
  const exists = await store.info(digest).then(
    () => true,
    (e) => (isKind(e, 'NotFound') ? false : Promise.reject(e)),
  );
  if (exists) return;
  const w = await store.writer({ ref, expected: digest, total: bytes.length, signal });
  try {
    if (w.offset > 0) await w.truncate();
    await w.write(bytes);
    await w.commit(bytes.length, digest);
  } catch (err) {
    await w.close().catch(() => {});
    throw err;
  }
}
