"""hkp-ar configuration files for the configuration tests (tests/test_ar_admission_config.py,
tests/integration/test_ar_config.py): the smallest valid one, and writing one."""

from __future__ import annotations

from pathlib import Path

MINIMAL = """
[ar]
address = 2001:db8::1
key_store = {store}
[home_server a]
ipaddr = 127.0.0.1
secret = s
[realm example.net]
home_servers = a
"""


def write_config(tmp_path: Path, text: str) -> Path:
    """`text` as tmp_path/hkp-ar.conf, its {store} a key store in tmp_path."""
    path = tmp_path / "hkp-ar.conf"
    path.write_text(text.replace("{store}", str(tmp_path / "keys.sqlite")))
    return path
