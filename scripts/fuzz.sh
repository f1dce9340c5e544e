#!/bin/sh
# `npm run fuzz [-- test/fuzz/FILE.test.ts ...]`: a long fuzz campaign over the property tests in
# test/fuzz/ (npm test runs the same properties with a few cases each). FUZZ_RUNS sets the cases
# per property (default 10000). A failure prints the counterexample with its seed and path; replay
# it with FUZZ_SEED=<seed> FUZZ_PATH=<path> npm run fuzz -- <file>, and keep it as a regression
# test by adding it to that file's REGRESSIONS list (see test/fuzz/fuzz-params.ts).
set -eu
cd "$(dirname "$0")/.."
export FUZZ_RUNS="${FUZZ_RUNS:-10000}"
if [ $# -eq 0 ]; then set -- test/fuzz/; fi
exec node_modules/.bin/node node_modules/vitest/vitest.mjs run "$@"
