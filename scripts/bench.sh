#!/bin/sh
# `npm run bench [-- --soak 24h] [bench/x.ts …]`: berth against containerd on the same images from
# the same loopback registry, through the CLI as a user runs it. Each bench starts what it compares
# against itself (test/lab: Debian's docker-registry on a free loopback port with busybox and
# debian:multi, a containerd with its own root in a temp dir) and stops it; the first run builds
# debian:multi with debootstrap (cached, see test/lab/lab.ts). The soak (bench/soak.ts: the demo
# under berth run) comes last, 10 minutes unless --soak says otherwise (--soak 0 skips it).
# Long-running; never part of the test suite. Figures and how to read them: docs/benchmarks.md.
set -eu
cd "$(dirname "$0")/.."
soak=10m
files=""
while [ $# -gt 0 ]; do
  case $1 in
    --soak) soak=$2; shift 2 ;;
    *) files="$files $1"; shift ;;
  esac
done
sh scripts/setup.sh
if [ -z "$files" ]; then
  for b in bench/*.ts; do [ "$b" = bench/soak.ts ] || files="$files $b"; done
  files="$files bench/soak.ts"
fi
echo "bench: $(date -u '+%Y-%m-%d %H:%M UTC'), $(nproc) cores, load $(cut -d' ' -f1-3 /proc/loadavg), commit $(git rev-parse --short HEAD 2>/dev/null || echo '?')"
for b in $files; do
  echo "=== $b"
  if [ "$b" = bench/soak.ts ]; then
    node_modules/.bin/node "$b" --duration "$soak"
  else
    node_modules/.bin/node "$b"
  fi
done
