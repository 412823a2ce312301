"""Where a lab keeps its state: $HKP_LAB_DIR, else /var/lib/hkp-lab as root, else a
per-user directory under $XDG_RUNTIME_DIR or /tmp."""

from __future__ import annotations

import os
from pathlib import Path

ENDPOINTS_FILE = "endpoints.json"  # mode 0600: it holds HMKs and the RADIUS secret
PROCESSES_FILE = "processes.json"


def state_dir(directory: str | os.PathLike[str] | None = None) -> Path:
    if directory:
        return Path(directory).resolve()
    if env := os.environ.get("HKP_LAB_DIR"):
        return Path(env).resolve()
    if os.geteuid() == 0:
        return Path("/var/lib/hkp-lab")
    runtime = os.environ.get("XDG_RUNTIME_DIR")
    return Path(runtime) / "hkp-lab" if runtime else Path(f"/tmp/hkp-lab-{os.geteuid()}")


def endpoints_path(directory: str | os.PathLike[str] | None = None) -> Path:
    return state_dir(directory) / ENDPOINTS_FILE


def processes_path(directory: str | os.PathLike[str] | None = None) -> Path:
    return state_dir(directory) / PROCESSES_FILE
