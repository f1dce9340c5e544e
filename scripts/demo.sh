#!/bin/sh
# The README's first command (`npm start`): install what is needed, provision the demo image the way
# an air-gapped device is provisioned (an OCI archive in berth's import directory, built from Debian's
# busybox-static), then run the berth daemon on manifests/ and show the containers coming up.
set -eu
cd "$(dirname "$0")/.."
sh scripts/setup.sh
root=${BERTH_ROOT:-/var/lib/berth}
mkdir -p "$root/import"
chmod 0700 "$root"
archive="$root/import/berth-demo-busybox.oci.tar"
[ -f "$archive" ] || node_modules/.bin/node scripts/build-demo-image.ts "$archive"
# Step lines and the status table go to stdout; the log (stderr) shows warnings and errors only.
exec ./bin/berth --root "$root" --log-level "${BERTH_LOG_LEVEL:-warn}" run -f manifests/ "$@"
