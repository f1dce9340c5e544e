/**
 * The native apply path: src/diff/native/apply-layer.c (libarchive, OpenSSL), built at first use
 * with the system C compiler into a content-addressed path as the shim is, and run once per layer
 * with the compressed layer on its stdin. It decompresses, hashes and extracts in a process of its
 * own, on two threads, with the rules of applyLayer (src/diff/apply.ts); this module gives it
 * applyLayer's contract: the same options, result, error kinds and messages.
 */
import { spawn } from 'node:child_process';
import { open } from 'node:fs/promises';
import path from 'node:path';
import type { Readable } from 'node:stream';
import { fileURLToPath } from 'node:url';
import { type CHelperBuild, ensureCHelper } from '../c-helper.ts';
import { BerthError, corrupt, type ErrorKind, ErrorKinds } from '../errors.ts';
import type { ApplyOptions, ApplyResult } from './apply.ts';
import type { LayerSource } from './apply-worker.ts';
import { onLines } from './line-reader.ts';
import { openFollowed } from './live-blob.ts';
import { LayerBudget, type ApplyLimits } from './limits.ts';
import { layerCompression } from './mediatypes.ts';

export const APPLY_HELPER_SOURCE = fileURLToPath(new URL('./native/apply-layer.c', import.meta.url));
/** libarchive refuses a PAX or GNU special header over 1 MiB itself, whatever the configured bound. */
export const LIBARCHIVE_HEADER_MAX = 1024 * 1024;

const APPLY_HELPER: CHelperBuild = {
  source: APPLY_HELPER_SOURCE,
  name: 'berth-apply-layer',
  describe: 'the layer-apply helper',
  overrideVar: 'BERTH_APPLY_HELPER',
  linkVariants: [
    // libarchive and libcrypto linked in: only the objects the helper calls (the tar reader, two
    // filters, SHA-256) instead of the shared libraries and everything they load (libxml2, ICU,
    // libstdc++, nettle, OpenSSL's provider tables). Each helper's resident memory falls from
    // 8.8 to 3.7 MiB on a gzip layer (GNU time's maxrss, debian:multi's base layer, tmpfs), and a
    // pull runs two to four at once. An upgrade of either library rebuilds the helper.
    {
      args: ['-Wl,--as-needed', '-Wl,-Bstatic', '-larchive', '-lcrypto', '-Wl,-Bdynamic', '-lz', '-lzstd', '-lpthread'],
      staticLibs: ['libarchive.a', 'libcrypto.a'],
    },
    // Where a static libarchive or libcrypto is not installed: the shared ones.
    { args: ['-larchive', '-lcrypto', '-lpthread'] },
  ],
  missingPackage: (out) =>
    /archive(_entry)?\.h|-larchive/.test(out)
      ? 'libarchive-dev'
      : /openssl\/|-lcrypto/.test(out)
        ? 'libssl-dev'
        : /zstd\.h|-lzstd/.test(out)
          ? 'libzstd-dev'
          : undefined,
};

/**
 * The path of a built helper: `$BERTH_APPLY_HELPER` if set, else `<cacheDir>/berth-apply-layer-<hash>`,
 * compiled there if it is not there yet.
 */
export function ensureApplyHelper(cacheDir: string, signal?: AbortSignal): Promise<string> {
  return ensureCHelper(APPLY_HELPER, cacheDir, signal);
}

/** One line of the helper's stdout (strings carry raw bytes as latin1, see the C file). */
type Report =
  | { warn: string }
  | { ok: { diffId: string; size: number; entries: number; impliedDirs: string[]; usage: { size: number; inodes: number } } }
  | { error: { kind: string; message: string; place?: string } }
  | { limit: { what: 'layerBytes' | 'entries' | 'heldBytes' | 'header' | 'reserve'; type?: string; size?: number; available?: number; bytes?: number } };

const bytes = (s: string) => Buffer.from(s, 'latin1').toString('utf8');

/** Apply a layer stream into `opts.root` with the native helper: applyLayer's contract. */
export function applyLayerNative(source: Readable, opts: ApplyOptions & { helper: string }): Promise<ApplyResult> {
  return applyWithHelper({ stream: source }, opts);
}

/**
 * Apply a layer blob file, or one still downloading, with the native helper reading the file
 * itself (its stdin is the file): no byte of the layer passes through this process.
 */
export async function applyLayerNativeFrom(source: LayerSource, opts: ApplyOptions & { helper: string }): Promise<ApplyResult> {
  opts.signal?.throwIfAborted();
  const file = source.kind === 'file' ? await open(source.path, 'r') : await openFollowed({ ...source, signal: opts.signal });
  try {
    return await applyWithHelper({ fd: file.fd, follow: source.kind === 'follow' ? source : undefined }, opts);
  } finally {
    await file.close();
  }
}

/** The helper's stdin: a stream piped in, or a file it reads itself (following a download). */
type HelperInput =
  | { stream: Readable; fd?: undefined; follow?: undefined }
  | { stream?: undefined; fd: number; follow?: { size: number; committed: Promise<void> } };

async function applyWithHelper(input: HelperInput, opts: ApplyOptions & { helper: string }): Promise<ApplyResult> {
  const layer = opts.layerDigest ?? '(layer)';
  const source = input.stream;
  const aborted = () => {
    const reason = opts.signal?.reason;
    return reason instanceof BerthError ? reason : new BerthError('Aborted', `layer ${layer}: aborted`, { cause: reason });
  };
  let compression: string;
  try {
    compression = layerCompression(opts.mediaType, layer);
  } catch (err) {
    source?.destroy();
    throw err;
  }
  if (opts.signal?.aborted) {
    source?.destroy();
    throw aborted();
  }
  const root = path.resolve(opts.root);
  const limits = new LayerBudget(root, layer, opts.limits).limits;
  const headerBytes = Math.min(limits.headerBytes, LIBARCHIVE_HEADER_MAX);
  const args = [
    ...['--root', root, '--compression', compression, '--whiteouts', opts.whiteouts],
    ...(opts.whiteouts === 'overlay' ? (opts.parents ?? []).flatMap((p) => ['--parent', path.resolve(p)]) : []),
    ...['--layer-bytes', String(limits.layerBytes), '--entries', String(limits.entries), '--header-bytes', String(headerBytes)],
    ...['--held-bytes', String(limits.heldBytes), '--reserve-bytes', String(limits.reserveBytes), '--check-every-bytes', String(limits.checkEveryBytes)],
    ...(opts.expectedDiffId ? ['--expect', opts.expectedDiffId] : []),
    ...(opts.sync ? ['--sync'] : []),
    ...(input.follow ? ['--follow', String(input.follow.size)] : []),
  ];

  const { result, failure } = await new Promise<{ result?: Report; failure?: unknown }>((resolve) => {
    const child = spawn(opts.helper, args, { stdio: [input.fd ?? 'pipe', 'pipe', 'pipe'] });
    let failure: unknown;
    let result: Report | undefined;
    let stderr = '';
    // Our side failed (abort, the source): the child is killed, and the promise waits for its end.
    const stop = (err: unknown) => {
      failure ??= err;
      child.kill('SIGKILL');
      source?.destroy();
    };
    const onAbort = () => stop(aborted());
    opts.signal?.addEventListener('abort', onAbort, { once: true });
    // A download that fails leaves the file the helper follows short: stop it.
    input.follow?.committed.catch((err) => stop(err));
    if (source) {
      source.on('error', (err) =>
        stop(err instanceof BerthError ? err : new BerthError('Internal', `layer ${layer}: apply failed: ${err.message}`, { cause: err })),
      );
      child.stdin!.on('error', () => {}); // EPIPE once the helper has failed: its report says why
      source.pipe(child.stdin!);
    }
    child.stderr!.setEncoding('utf8').on('data', (d: string) => {
      if (stderr.length < 8192) stderr += d;
    });
    onLines(child.stdout!, (line) => {
      let report: Report;
      try {
        report = JSON.parse(line);
      } catch {
        if (stderr.length < 8192) stderr += `${line}\n`;
        return;
      }
      if ('warn' in report) opts.warn?.(`layer ${layer}: ${bytes(report.warn)}`);
      else result = report;
    });
    let done = false;
    const finish = (failed?: unknown) => {
      if (done) return;
      done = true;
      opts.signal?.removeEventListener('abort', onAbort);
      if (source) {
        source.unpipe(child.stdin!);
        if (!result || !('ok' in result)) source.destroy();
      }
      failure ??= failed;
      resolve({ result, failure });
    };
    child.on('error', (err) =>
      finish(new BerthError('FailedPrecondition', `layer ${layer}: cannot run the layer-apply helper ${opts.helper}: ${err.message}`, { cause: err })),
    );
    child.on('close', (code, signal) => {
      if (!result && !failure) {
        const how = signal ? `was killed by ${signal}` : `exited ${code}`;
        failure = new BerthError('Internal', `layer ${layer}: the layer-apply helper ${how} without a result${stderr ? `: ${stderr.trim()}` : ''}`);
      }
      finish();
    });
  });

  if (failure) throw failure;
  if (!result) throw new BerthError('Internal', `layer ${layer}: no result from the layer-apply helper`);
  if ('limit' in result) throw limitError(result.limit, root, layer, { ...limits, headerBytes });
  if ('error' in result) {
    const e = result.error;
    const kind: ErrorKind = (ErrorKinds as readonly string[]).includes(e.kind) ? (e.kind as ErrorKind) : 'Internal';
    throw new BerthError(kind, `layer ${layer}: ${bytes(e.message)}`, { place: e.place ? { file: bytes(e.place) } : undefined });
  }
  if (!('ok' in result)) throw new BerthError('Internal', `layer ${layer}: unexpected report from the layer-apply helper`);
  const { diffId, size, entries, impliedDirs, usage } = result.ok;
  if (opts.expectedDiffId && diffId !== opts.expectedDiffId) {
    throw corrupt(`layer ${layer}: wrong diff id: expected ${opts.expectedDiffId}, got ${diffId}`);
  }
  return { diffId, size, entries, impliedDirs: impliedDirs.map(bytes), usage };
}

/**
 * The helper names the bound it hit; LayerBudget words the error, so both paths say the same.
 * Each call below is one that LayerBudget refuses with the numbers the helper saw.
 */
function limitError(limit: Extract<Report, { limit: unknown }>['limit'], root: string, layer: string, limits: ApplyLimits): unknown {
  const budget = (l: Partial<ApplyLimits>) => new LayerBudget(root, layer, { ...limits, checkEveryBytes: Number.POSITIVE_INFINITY, ...l });
  try {
    switch (limit.what) {
      case 'layerBytes':
        budget({}).addBytes(limits.layerBytes + 1);
        break;
      case 'heldBytes':
        budget({}).hold(limits.heldBytes + 1);
        break;
      case 'header':
        budget({}).checkHeader(limit.size ?? Number.POSITIVE_INFINITY, limit.type ?? 'special');
        break;
      case 'entries':
        budget({}).addEntries(limits.entries + 1);
        break;
      case 'reserve': {
        // Worded from a fresh look at the filesystem, which the helper left as full as it found it.
        const b = budget({ layerBytes: Number.POSITIVE_INFINITY });
        b.addBytes(limit.bytes ?? 0);
        b.checkFreeSpace();
        break;
      }
    }
  } catch (err) {
    return err;
  }
  return new BerthError('ResourceExhausted', `layer ${layer}: over the ${limit.what} bound (${JSON.stringify(limit)})`);
}
