#!/usr/bin/env bash
# Set up hkp-radius on a Debian 12 machine, as root: Debian's FreeRADIUS and tools,
# then a virtual environment at .venv with the project and its test tools.
# Idempotent: a second run only checks. The Docker images and CI call this same script.
set -euo pipefail
cd "$(dirname "$0")/.."

# systemd (systemd-analyze verify), logrotate and tshark: the operator tests of
# systemd/ and wireshark/ (docs/ar.md, docs/hks.md).
APT_PACKAGES=(freeradius freeradius-python3 freeradius-utils iproute2 sqlite3
              python3 python3-venv python3-pip ca-certificates
              systemd logrotate tshark  # tshark also decodes FMIPv6 in tests/test_fmip.py
              # Several HKS servers on one database (docs/hks.md): PostgreSQL for the
              # replay state (psycopg for the Debian Python FreeRADIUS embeds), the
              # credential stores of raddb/mods-available/hkp_sql and hkp_ldap; the
              # tests and the lab run their own clusters and slapd.
              postgresql python3-psycopg freeradius-postgresql
              slapd ldap-utils freeradius-ldap)

# The container lab (docker/container-lab.sh, run by test.sh): podman with runc, the
# compose tool and mmdebstrap for the base image. Not inside the project's image
# (HKP_NO_CONTAINERS=1) nor another podman container; a machine that is itself a
# Docker-style sandbox (/.dockerenv, as this project's CI machines are) runs podman fine.
if [ -z "${HKP_NO_CONTAINERS:-}" ] && [ ! -e /run/.containerenv ]; then
  APT_PACKAGES+=(podman podman-compose mmdebstrap runc containernetworking-plugins)
fi

missing=()
for p in "${APT_PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ "${#missing[@]}" -gt 0 ]; then
  if [ "$(id -u)" -ne 0 ]; then
    echo "install.sh: missing Debian packages ${missing[*]}; run this script as root" >&2
    exit 1
  fi
  echo "install.sh: installing ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  # Debian's freeradius package starts its service on install; the lab and tests run
  # private instances, so keep invoke-rc.d from starting it (only if no policy exists).
  # The trap removes our policy also when apt-get fails: left behind, it would stop every
  # service the machine installs later from starting.
  own_policy=0
  if [ ! -e /usr/sbin/policy-rc.d ]; then
    trap 'rm -f /usr/sbin/policy-rc.d' EXIT
    printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d && chmod +x /usr/sbin/policy-rc.d
    own_policy=1
  fi
  apt-get update -qq
  # tshark's package asks whether non-root users may capture: no (we capture as root).
  echo "wireshark-common wireshark-common/install-setuid boolean false" | debconf-set-selections
  # slapd's package would build a directory for a made-up domain: no (our tests and the
  # lab configure their own slapd).
  echo "slapd slapd/no_configuration boolean true" | debconf-set-selections
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  if [ "$own_policy" = 1 ]; then
    rm -f /usr/sbin/policy-rc.d
    trap - EXIT
  fi
fi

# The project's Python: whatever python3 is first on PATH (pyenv's 3.11 on our machines,
# Debian's 3.11 on a fresh one). FreeRADIUS embeds Debian's /usr/bin/python3 regardless.
PYTHON=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
  "$PYTHON" -m venv .venv
fi
# pip's and the build backend's chatter goes to a log, shown only when pip fails. A stamp
# of setup.cfg skips pip when nothing it installs has changed (the lab's second run).
pip_log=.venv/pip-install.log
stamp=.venv/.hkp-installed-$(sha256sum setup.cfg pyproject.toml | sha256sum | cut -c1-16)
if [ ! -e "$stamp" ]; then
  if ! { .venv/bin/python -m pip install --upgrade pip &&
         .venv/bin/python -m pip install -e '.[test]'; } >"$pip_log" 2>&1; then
    tail -n 40 "$pip_log" >&2
    echo "install.sh: pip failed (full log: $pip_log)" >&2
    exit 1
  fi
  rm -f .venv/.hkp-installed-*
  touch "$stamp"
fi
echo "install.sh: ready ($(.venv/bin/python --version), $(/usr/sbin/freeradius -v | head -1 | sed 's/.*Version/FreeRADIUS Version/;s/,.*//'))"
