#!/usr/bin/env bash
# The README's first command: set up, then run the lab (a private FreeRADIUS with the
# HKS module, an AR, and MN exchanges through them), then stop everything it started.
# Arguments go to `hkp-lab` (default: run).
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/install.sh
exec .venv/bin/hkp-lab "${@:-run}"
