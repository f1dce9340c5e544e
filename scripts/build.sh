#!/bin/sh
# Compiles src/ to plain JavaScript in dist/ (TypeScript 7; types are stripped, nothing bundled).
# bin/berth runs dist/ when it is newer than every source file, else src/ directly: the build
# saves the type stripper's memory (~20 MiB resident) and half the start-up time.
set -eu
cd "$(dirname "$0")/.."
rm -rf dist.tmp
# The JSON Schema validators, as code Ajv generates (src/schema-validator.ts): rewritten only if a
# schema changed, so the daemon never loads Ajv.
node_modules/.bin/node --disable-warning=ExperimentalWarning scripts/generate-validators.ts
# A type error is reported but does not stop the build (the tests run tsc's checks separately).
node_modules/.bin/tsc -p tsconfig.build.json --outDir dist.tmp || echo "build: tsc reported type errors (JavaScript emitted anyway)" >&2
[ -f dist.tmp/cli/main.js ] || { echo "build: tsc emitted nothing" >&2; exit 1; }
# Files the code opens at run time next to itself.
mkdir -p dist.tmp/runtime/shim && cp src/runtime/shim/*.c dist.tmp/runtime/shim/
mkdir -p dist.tmp/diff/native && cp src/diff/native/*.c dist.tmp/diff/native/
# The stamp holds the commit built (berth --version prints it); outside a checkout it is empty.
{ git rev-parse HEAD 2>/dev/null || true; } > dist.tmp/.build-stamp
rm -rf dist && mv dist.tmp dist
