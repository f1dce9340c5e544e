#!/bin/sh
# `npm run bench`: berth against containerd on the same images from the same loopback registry.
# Each bench starts what it compares against itself (test/lab: Debian's docker-registry on a free
# loopback port with busybox and debian:multi, a containerd with its own root in a temp dir) and
# stops it. The first run builds debian:multi with debootstrap (cached, see test/lab/lab.ts).
# Long-running; never part of the test suite.
set -eu
cd "$(dirname "$0")/.."
sh scripts/setup.sh
for b in ${*:-bench/*.ts}; do
  echo "=== $b"
  node_modules/.bin/node "$b"
done
