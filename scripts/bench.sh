#!/bin/sh
# `npm run bench`: berth against containerd on the same images from the same loopback registry
# (the lab in ../shared/lab: a registry on 127.0.0.1:5000, containerd, busybox and debian:multi).
# Long-running; never part of the test suite.
set -eu
cd "$(dirname "$0")/.."
sh scripts/setup.sh
lab=${LAB_SCRIPTS:-../shared/lab}
bash "$lab/up.sh"
for b in ${*:-bench/*.ts}; do
  echo "=== $b"
  node_modules/.bin/node "$b"
done
