#!/bin/sh
# Installs what berth and its tests need on a fresh Debian bookworm machine, idempotently:
# Debian packages (runc, crun, a registry, skopeo, umoci, busybox-static, containerd for comparison
# only, hyperfine, attr, zstd, gcc to build berth-shim, the per-container supervisor, debootstrap for the
# benchmarks' debian image, tini for `init: true` containers, netavark and aardvark-dns for networks, git, ssh-keygen and gpg for the git source, age for secrets) and the npm dependencies, which include the pinned Node 24.
set -eu
cd "$(dirname "$0")/.."

need=""
for pair in runc:runc crun:crun docker-registry:docker-registry skopeo:skopeo umoci:umoci \
            busybox:busybox-static containerd:containerd ctr:containerd hyperfine:hyperfine \
            getfattr:attr zstd:zstd mkfs.ext4:e2fsprogs cc:gcc debootstrap:debootstrap \
            tini-static:tini netavark:netavark aardvark-dns:aardvark-dns ip:iproute2 iptables:iptables \
            git:git ssh-keygen:openssh-client gpg:gpg age:age; do
  bin=${pair%%:*}; pkg=${pair##*:}
  command -v "$bin" >/dev/null 2>&1 || [ -x "/usr/sbin/$bin" ] || [ -x "/sbin/$bin" ] || [ -x "/usr/lib/podman/$bin" ] || need="$need $pkg"
done
# Headers and libraries the native layer-apply helper (src/diff/native/apply-layer.c) is built
# against: libarchive and libcrypto linked in statically, zlib and zstd as shared libraries.
[ -f /usr/include/archive.h ] || need="$need libarchive-dev"
[ -f /usr/include/openssl/evp.h ] || need="$need libssl-dev"
[ -f /usr/include/zlib.h ] || need="$need zlib1g-dev"
[ -f /usr/include/zstd.h ] || need="$need libzstd-dev"
if [ -n "$need" ]; then
  echo "setup: installing Debian packages:$need" >&2
  if [ "$(id -u)" != 0 ]; then echo "setup: run as root to install packages" >&2; exit 1; fi
  apt-get update -qq
  # shellcheck disable=SC2086
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $need >/dev/null
fi

# npm dependencies, including the pinned Node 24 (package "node"); reinstall when the lock changed.
stamp=node_modules/.berth-installed
if [ ! -x node_modules/.bin/node ] || [ ! -f "$stamp" ] || [ package-lock.json -nt "$stamp" ]; then
  echo "setup: npm ci" >&2
  npm ci --no-audit --no-fund --loglevel=error
  touch "$stamp"
fi
node_modules/.bin/node --version >/dev/null

# Compile src/ to dist/ (bin/berth runs it when it is up to date, the sources otherwise).
if [ ! -f dist/.build-stamp ] || [ -n "$(find src -newer dist/.build-stamp -print -quit)" ]; then
  sh scripts/build.sh
fi
