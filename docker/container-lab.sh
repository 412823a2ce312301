#!/usr/bin/env bash
# The container lab from nothing (issue 12): the base image without a registry
# (build-base.sh, reused when present), the project image from this checkout, the
# image's own lab, then the compose lab (HKS, AR and MN containers on an IPv6 network)
# to a verified key; everything it made but the images is removed again.
# Exit 0 when the MN got its key. Needs podman, podman-compose, mmdebstrap (install.sh
# installs them outside containers), as root.
set -euo pipefail
cd "$(dirname "$0")/.."
export CONTAINERS_CONF=$PWD/docker/containers.conf
PROJECT=hkp-lab-$$
NETWORK=hkp-lab
SUBNET=${HKP_LAB_SUBNET:-fd00:1ab:c0::/64}
start=$SECONDS

./docker/build-base.sh
podman build -q --build-arg BASE=localhost/debian:12 -f docker/Dockerfile -t localhost/hkp-radius . >/dev/null
echo "container-lab: image localhost/hkp-radius built ($((SECONDS - start)) s)"
podman run --rm localhost/hkp-radius hkp-lab run | tail -n 1

cleanup() {
  podman-compose -p "$PROJECT" -f docker/compose.yml down -v >/dev/null 2>&1 || true
  podman volume rm -f "${PROJECT}_hkp-shared" >/dev/null 2>&1 || true
  podman network rm -f "$NETWORK" >/dev/null 2>&1 || true
}
trap cleanup EXIT
podman network exists "$NETWORK" && podman network rm -f "$NETWORK" >/dev/null
podman network create --ipv6 --subnet "$SUBNET" "$NETWORK" >/dev/null
export HKP_SECRET=$(python3 -c 'import secrets; print(secrets.token_hex(16))')
export HKP_HMK=$(python3 -c 'import secrets; print(secrets.token_hex(64))')
export HKP_NAI=alice@compose.example HKP_SUBNET=$SUBNET
podman-compose -p "$PROJECT" -f docker/compose.yml up -d >/tmp/$PROJECT-up.log 2>&1 ||
  { cat "/tmp/$PROJECT-up.log"; exit 1; }
rm -f "/tmp/$PROJECT-up.log"
# The MN container's exit is the event: it runs one exchange and stops.
status=$(podman wait "${PROJECT}_mn_1")
podman logs "${PROJECT}_mn_1" | tail -n 5
if [ "$status" != 0 ]; then
  for service in hks ar; do
    echo "--- $service"; podman logs "${PROJECT}_${service}_1" 2>&1 | tail -n 20
  done
  echo "container-lab: the MN got no key (exit $status)" >&2
  exit 1
fi
echo "container-lab: the MN got a key through the HKS and AR containers ($((SECONDS - start)) s)"
