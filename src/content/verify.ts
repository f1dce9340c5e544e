/** Re-hash every committed blob: what `berth content verify` runs after a power cut or a doubt. */
import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { isMissing } from '../durable-file.ts';
import type { ContentStore } from './content.ts';

export interface VerifyResult {
  digest: string;
  size: number;
  ok: boolean;
  /** The digest actually found, when it differs. */
  found?: string;
  error?: string;
  /** The blob could not be read because it is gone (removed while being checked). */
  missing?: boolean;
}

/** Hash one committed blob; ok when its content hashes to its name. */
export async function verifyBlob(store: ContentStore, digest: string, size: number, signal?: AbortSignal): Promise<VerifyResult> {
  const hash = createHash('sha256');
  try {
    await new Promise<void>((resolve, reject) => {
      const rs = createReadStream(store.blobPath(digest), { highWaterMark: 1 << 20, signal });
      rs.on('data', (c) => hash.update(c as Buffer));
      rs.on('end', resolve);
      rs.on('error', reject);
    });
  } catch (err: any) {
    return { digest, size, ok: false, error: err?.message ?? String(err), ...(isMissing(err) ? { missing: true } : {}) };
  }
  const found = `sha256:${hash.digest('hex')}`;
  return found === digest ? { digest, size, ok: true } : { digest, size, ok: false, found };
}

/** Verify every blob in the store, yielding one result per blob. */
export async function* verifyContent(store: ContentStore, signal?: AbortSignal): AsyncIterable<VerifyResult> {
  for await (const info of store.walk(signal)) {
    yield await verifyBlob(store, info.digest, info.size, signal);
  }
}
