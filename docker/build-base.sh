#!/usr/bin/env bash
# Build the Debian 12 base image without a registry: mmdebstrap from the package mirror,
# then `podman import` as localhost/debian:12. The host's CA bundle and a pip.conf that
# points at it go into the image (pip inside the build fails certificate checks
# otherwise). Skipped when the image exists (CI reuses it); --force rebuilds.
set -euo pipefail
export CONTAINERS_CONF=${CONTAINERS_CONF:-$(cd "$(dirname "$0")" && pwd)/containers.conf}
IMAGE=localhost/debian:12
if [ "${1:-}" != "--force" ] && podman image exists "$IMAGE"; then
  echo "build-base: $IMAGE exists (reused)"; exit 0
fi
MIRROR=${HKP_DEBIAN_MIRROR:-http://deb.debian.org/debian}
work=$(mktemp -d /tmp/hkp-base.XXXXXX)
trap 'rm -rf "$work"' EXIT
mkdir -p "$work/etc/ssl/certs"
cp /etc/ssl/certs/ca-certificates.crt "$work/etc/ssl/certs/ca-certificates.crt"
printf '[global]\ncert = /etc/ssl/certs/ca-certificates.crt\n' > "$work/pip.conf"
mmdebstrap --quiet --variant=minbase --include=ca-certificates \
  --customize-hook="mkdir -p \"\$1/etc/pip\" && cp $work/pip.conf \"\$1/etc/pip.conf\"" \
  --customize-hook="cp $work/etc/ssl/certs/ca-certificates.crt \"\$1/usr/local/share/host-ca.crt\"" \
  --customize-hook="cat \"\$1/usr/local/share/host-ca.crt\" >> \"\$1/etc/ssl/certs/ca-certificates.crt\"" \
  bookworm "$work/rootfs.tar" "$MIRROR"
podman import --change 'CMD ["/bin/bash"]' "$work/rootfs.tar" "$IMAGE" >/dev/null
echo "build-base: $IMAGE built from $MIRROR"
