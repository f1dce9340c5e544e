/**
 * Which code applies layers. Two paths keep the same rules (confinement, whiteouts, limits, the
 * diff_id check) and run the same conformance suites:
 * - `native`: berth-apply (src/diff/native/apply-layer.c on libarchive), a process per layer that
 *   decompresses, hashes and writes on its own cores, fed the compressed bytes;
 * - `js`: src/diff/apply.ts in this process.
 * `auto` (the default of `[unpack] apply`) takes the native helper when it can be built here (a C
 * compiler and libarchive's headers), and otherwise JavaScript, saying why once.
 */
import { availableParallelism } from 'node:os';
import { join } from 'node:path';
import type { Readable } from 'node:stream';
import type { Config } from '../config/config.ts';
import { isKind } from '../errors.ts';
import type { ApplyOptions, ApplyResult } from './apply.ts';
import type { LayerSource } from './apply-worker.ts';
import { applyLimitsFromConfig, type ApplyLimits } from './limits.ts';

export type ApplyPath = 'auto' | 'native' | 'js';
export type LayerApplier = (source: Readable, opts: ApplyOptions) => Promise<ApplyResult>;

export interface SelectedApplier {
  path: 'native' | 'js';
  apply: LayerApplier;
  /** Apply from a blob file, or one still downloading, read by the applier itself (native only). */
  applyFrom?: (source: LayerSource, opts: ApplyOptions) => Promise<ApplyResult>;
  /**
   * Layers applied at once. The JavaScript path shares this process's thread with the downloads,
   * so two; a native helper is a process of two threads (decompression, file creation), so two of
   * them fill two cores, and each more holds its memory (3.5-6 MiB) while it waits for its
   * download or a core.
   */
  parallelism: number;
}

export const JS_APPLIER: SelectedApplier = {
  path: 'js',
  apply: async (source, opts) => (await import('./apply.ts')).applyLayer(source, opts),
  parallelism: 2,
};
// Two, measured against 8 (pull of debian:multi and -zstd into tmpfs, 7 alternating runs each, 2 cores,
// 2026-12-03): as fast (medians 1.29 against 1.90 s and 1.40 against 1.68 s, under other work), and
// the pull's peak (berth and its helpers) 88-98 against 92-106 MiB: three helpers had been alive
// at the peak. A helper keeps about two cores busy, so a bigger machine runs one per two cores.
const nativeParallelism = () => Math.max(2, Math.floor(availableParallelism() / 2));

/**
 * The applier for `path`; `cacheDir` is where the helper is built (`<root>/lib`, beside berth-shim).
 * `native` fails (FailedPrecondition, naming what is missing) when the helper cannot be built.
 */
export async function selectLayerApplier(
  path: ApplyPath,
  cacheDir: string,
  opts: { warn?: (msg: string) => void; signal?: AbortSignal } = {},
): Promise<SelectedApplier> {
  if (path === 'js') return JS_APPLIER;
  // Loaded only here: the daemon keeps neither path's modules until it unpacks.
  const { ensureApplyHelper, applyLayerNative, applyLayerNativeFrom } = await import('./native-apply.ts');
  try {
    const helper = await ensureApplyHelper(cacheDir, opts.signal);
    return {
      path: 'native',
      apply: (source, o) => applyLayerNative(source, { ...o, helper }),
      applyFrom: (source, o) => applyLayerNativeFrom(source, { ...o, helper }),
      parallelism: nativeParallelism(),
    };
  } catch (err) {
    if (path === 'native' || !isKind(err, 'FailedPrecondition')) throw err;
    opts.warn?.(`applying layers in JavaScript ([unpack] apply = "auto"): ${(err as Error).message}`);
    return JS_APPLIER;
  }
}

/** How a berth config says layers are applied: the applier (`[unpack] apply`) and the bounds. */
export async function unpackSettingsFromConfig(
  config: Pick<Config, 'root' | 'unpack' | 'gc'>,
  opts: { warn?: (msg: string) => void; signal?: AbortSignal } = {},
): Promise<{ applier: SelectedApplier; limits: Partial<ApplyLimits> }> {
  return { applier: await selectLayerApplier(config.unpack.apply, join(config.root, 'lib'), opts), limits: applyLimitsFromConfig(config) };
}
