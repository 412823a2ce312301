#!/usr/bin/env bash
# The AR host: hkp-ar on UDP port 54135 (P9), its AR-ID its own address, RADIUS to the HKS.
set -euo pipefail
. /opt/hkp-radius/docker/compose/common.sh
wait_file /shared/hks.addr 60
me=$(own_address)
mkdir -p /var/lib/hkp-ar
cat > /etc/hkp-ar.conf <<CONF
[ar]
address = $me
nas_identifier = compose-ar
key_store = /var/lib/hkp-ar/keys.sqlite3
dictionary = /opt/hkp-radius/raddb/dictionary.pyrad
[udp]
enabled = yes
listen = ::
port = 54135
[raw]
enabled = no
[coa_validation]
mode = permissive
[log]
level = info
[home_server hks]
ipaddr = $(cat /shared/hks.addr)
port = 18140
secret = $HKP_SECRET
[realm DEFAULT]
home_servers = hks
CONF
chmod 600 /etc/hkp-ar.conf
hkp-ar -c /etc/hkp-ar.conf > /tmp/ar.log 2>&1 &
ar=$!
until grep -q '"event": "ready"' /tmp/ar.log; do
  kill -0 "$ar" 2>/dev/null || { cat /tmp/ar.log; exit 1; }
  sleep 0.1  # polling interval while hkp-ar starts
done
echo "$me" > /shared/ar.addr
tail -n +1 -f /tmp/ar.log &
wait "$ar"
