/**
 * How many cases each property runs, and how to replay one.
 *
 * `npm test` runs each property a bounded number of times (`runs` below; all fuzzers together stay
 * well under 20 s). `npm run fuzz` (scripts/fuzz.sh) sets FUZZ_RUNS for a long campaign. When a
 * property fails, fast-check prints the counterexample with its `seed` and `path`. To replay it:
 *
 *   FUZZ_SEED=<seed> FUZZ_PATH=<path> npm run fuzz -- test/fuzz/<file>.test.ts
 *
 * To keep it as a regression test, paste the printed counterexample into that file's
 * `REGRESSIONS` list: they are passed to fast-check as `examples`, which run first, every time.
 */
import fc from 'fast-check';

const campaign = process.env.FUZZ_RUNS !== undefined;

/** fast-check parameters: `runs` cases in `npm test`, FUZZ_RUNS in a campaign, a replay with FUZZ_SEED/FUZZ_PATH. */
export function fuzzParams<T>(runs: number, examples: T[] = []): fc.Parameters<T> {
  const seed = process.env.FUZZ_SEED === undefined ? undefined : Number(process.env.FUZZ_SEED);
  return {
    numRuns: campaign ? Number(process.env.FUZZ_RUNS) : runs,
    examples,
    ...(seed === undefined ? {} : { seed, path: process.env.FUZZ_PATH }),
    // A failure prints the seed and the path to it, for FUZZ_SEED / FUZZ_PATH.
    verbose: campaign ? fc.VerbosityLevel.Verbose : fc.VerbosityLevel.None,
  };
}

/** The vitest timeout of one property: the suite's default in `npm test`, a day in a campaign. */
export const FUZZ_TIMEOUT = campaign ? 24 * 3600 * 1000 : 60_000;
