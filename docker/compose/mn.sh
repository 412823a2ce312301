#!/usr/bin/env bash
# The MN host: one key request to the AR over UDP; the exit status is the verdict.
set -euo pipefail
. /opt/hkp-radius/docker/compose/common.sh
wait_file /shared/ar.addr 90
ar=$(cat /shared/ar.addr)
export HKP_MN_HMK=0x$HKP_HMK
hkp-mn request --nai "$HKP_NAI" --ar "$ar" --udp "[$ar]:54135" --keys /tmp/keys.json --json \
  | tee /shared/mn.json
