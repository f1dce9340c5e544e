/**
 * The worker side of src/diff/apply-worker.ts: opens the layer source, runs `applyLayer`, posts
 * back the result (or the error, as kind + message + place).
 */
import { createReadStream } from 'node:fs';
import { parentPort, workerData } from 'node:worker_threads';
import { BerthError } from '../errors.ts';
import { followBlob } from './live-blob.ts';
import { applyLayer, type ApplyOptions } from './apply.ts';

const port = parentPort!;
const { source, opts } = workerData as {
  source: { kind: 'file'; path: string } | { kind: 'follow'; dataPath: string; blobPath: string; size: number };
  opts: Omit<ApplyOptions, 'signal' | 'warn'>;
};

const abort = new AbortController();
let commit!: { resolve: () => void; reject: (e: Error) => void };
const committed = new Promise<void>((resolve, reject) => (commit = { resolve, reject }));
committed.catch(() => {});
port.on('message', (m: { type: string; ok?: boolean; message?: string; kind?: string }) => {
  if (m.type === 'abort') abort.abort(new BerthError('Aborted', `layer ${opts.layerDigest ?? ''}: aborted`));
  else if (m.type === 'committed') {
    if (m.ok) commit.resolve();
    else commit.reject(new BerthError((m.kind as any) ?? 'Unavailable', m.message ?? 'download failed'));
  }
});

try {
  const stream =
    source.kind === 'file'
      ? createReadStream(source.path, { highWaterMark: 1 << 20 })
      : followBlob({ dataPath: source.dataPath, blobPath: source.blobPath, size: source.size, committed, signal: abort.signal });
  const result = await applyLayer(stream, { ...opts, signal: abort.signal, warn: (message) => port.postMessage({ type: 'warn', message }) });
  port.postMessage({ type: 'done', result });
} catch (err: any) {
  port.postMessage({ type: 'error', kind: err?.kind, message: err?.message ?? String(err), file: err?.place?.file ?? err?.path, code: err?.code });
}
port.close();
