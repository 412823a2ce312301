"""Where this project's raddb/ files are: beside the packages in a source checkout or an
editable install, else under <prefix>/share/hkp-radius/raddb, where a wheel puts them
(setup.cfg data_files)."""

from __future__ import annotations

import sys
from pathlib import Path

_CHECKOUT_RADDB = Path(__file__).resolve().parent.parent / "raddb"
# The HKS module FreeRADIUS loads: these files of freeradius_module/ beside the core
# (the installer and the private runner copy them into FreeRADIUS's python_path).
FREERADIUS_MODULE_DIR = Path(__file__).resolve().parent.parent / "freeradius_module"
FREERADIUS_MODULE_FILES = (
    "__init__.py",
    "config.py",
    "replay_postgresql.py",
    "replay_sqlite.py",
    "rlm_hkp_hks.py",
)
_INSTALLED_RADDB = Path(sys.prefix) / "share" / "hkp-radius" / "raddb"


def raddb_source() -> Path:
    """The directory holding dictionary.hkp, mods-available/, sites-available/ ..."""
    if (_CHECKOUT_RADDB / "dictionary.hkp").is_file():
        return _CHECKOUT_RADDB
    return _INSTALLED_RADDB


RADDB_SOURCE = raddb_source()
