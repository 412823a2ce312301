#!/usr/bin/env bash
# The HKS host: Debian's FreeRADIUS configured the way an operator would, with
# hkp-hks-install, then the site's four settings and one MN's HMK.
set -euo pipefail
. /opt/hkp-radius/docker/compose/common.sh
raddb=/etc/freeradius/3.0
hkp-hks-install --raddb "$raddb"
site=$raddb/sites-available/hkp_hks
sed -i -e "s|^hkp_hks_listen_ipaddr = .*|hkp_hks_listen_ipaddr = ::|" \
       -e "s|^hkp_hks_ar_ipaddr = .*|hkp_hks_ar_ipaddr = $HKP_SUBNET|" \
       -e "s|^hkp_hks_ar_secret = .*|hkp_hks_ar_secret = \"$HKP_SECRET\"|" "$site"
printf '"%s"\tHKP-HMK := 0x%s\n' "$HKP_NAI" "$HKP_HMK" >> "$raddb/mods-config/files/hkp_users"
freeradius -XC -d "$raddb" >/dev/null
freeradius -f -l stdout -d "$raddb" &
radius=$!
# Ready when the HKS port is bound (FreeRADIUS binds before it serves).
until ss -Hlun | grep -q ':18140 '; do
  kill -0 "$radius" 2>/dev/null || { echo "hks: freeradius exited" >&2; exit 1; }
  sleep 0.1  # polling interval while FreeRADIUS starts
done
own_address > /shared/hks.addr
echo "hks: FreeRADIUS with the HKS on [$(cat /shared/hks.addr)]:18140"
wait "$radius"
