#!/bin/sh
# The whole test suite on a fresh machine: install what is needed, then run every test on Node 24.
set -eu
cd "$(dirname "$0")/.."
sh scripts/setup.sh
exec node_modules/.bin/node node_modules/vitest/vitest.mjs run "$@"
