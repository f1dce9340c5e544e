/**
 * Every layer-apply path, for conformance suites that run once per path:
 *
 *   describe.each(APPLY_PATHS)('%s apply path', (_path, applyLayer) => { ... });
 *
 * The native helper is built once (content-addressed, so test files running in parallel share
 * it). If it cannot be built, every native call rejects with the build error: those rows fail,
 * they are never skipped.
 */
import type { Readable } from 'node:stream';
import { applyLayer, type ApplyOptions, type ApplyResult } from '../../src/diff/apply.ts';
import { applyLayerNative, ensureApplyHelper } from '../../src/diff/native-apply.ts';

export const HELPER_CACHE = new URL('../../node_modules/.cache/berth-apply-helper', import.meta.url).pathname;

let built: Promise<string> | undefined;
/** The built helper's path (built at the first call). */
export function nativeHelper(): Promise<string> {
  built ??= ensureApplyHelper(HELPER_CACHE);
  return built;
}

export type ApplyFn = (source: Readable, opts: ApplyOptions) => Promise<ApplyResult>;

export const applyLayerWithHelper: ApplyFn = async (source, opts) => applyLayerNative(source, { ...opts, helper: await nativeHelper() });

export const APPLY_PATHS: Array<[string, ApplyFn]> = [
  ['js', applyLayer],
  ['native', applyLayerWithHelper],
];
