"""Fixtures for tests that run a real FreeRADIUS (freeradius_module.instance)."""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from hkp_support.freeradius import FREERADIUS, FreeRadiusInstance

# These tests need Debian's freeradius and root (scripts/install.sh sets both up; CI runs
# as root). They are never skipped by default: without them they fail, saying why. A
# developer without root may opt out with HKP_ALLOW_SKIP=1.
FREERADIUS_READY = os.path.exists(FREERADIUS) and os.geteuid() == 0
ALLOW_SKIP = os.environ.get("HKP_ALLOW_SKIP") == "1"
requires_freeradius = pytest.mark.skipif(
    ALLOW_SKIP and not FREERADIUS_READY,
    reason="HKP_ALLOW_SKIP=1 and no freeradius or not root",
)

ALICE = b"alice@example.net"
ALICE_HMK = bytes(range(64, 128))
SHORT = b"short@example.net"
SHORT_HMK = bytes(range(32))  # below the 64 octets of draft §6.1
BARRED = b"barred@example.net"
BARRED_HMK = bytes(range(100, 164))
LONG_NAI = (b"a-very-long-mobile-node-identifier-" * 6)[:200] + b"@example.net"
LONG_HMK = bytes(range(1, 65))
POLICY_PROHIBITED = b"carol@restricted.example.net"
POLICY_HMK = bytes(range(2, 66))
STRICT_USERS = {
    ALICE.decode(): ALICE_HMK,
    SHORT.decode(): SHORT_HMK,
    BARRED.decode(): BARRED_HMK,
    LONG_NAI.decode(): LONG_HMK,
    POLICY_PROHIBITED.decode(): POLICY_HMK,
}
# Operator policy in unlang: a whole realm may not use FMIPv6 here (draft §6.4).
REALM_POLICY = """
	if (&User-Name =~ /@restricted\\.example\\.net$/) {
		update control {
			&HKP-Authorization := Prohibit
		}
	}
"""


def work_dir(name: str) -> Path:
    """A directory freerad can reach (pytest's tmp_path sits under a 0700 dir)."""
    return Path(tempfile.mkdtemp(prefix=f"hkp-{name}-", dir="/tmp"))


@pytest.fixture
def fresh_dir() -> Iterator[Path]:
    path = work_dir("fr")
    yield path
    shutil.rmtree(path, ignore_errors=True)


@pytest.fixture
def shared_dir() -> Iterator[Path]:
    """A work dir that other users (postgres, openldap, freerad) traverse to their own."""
    path = work_dir("shared")
    os.chmod(path, 0o755)
    yield path
    shutil.rmtree(path, ignore_errors=True)


@pytest.fixture(scope="module")
def strict_hks() -> Iterator[FreeRadiusInstance]:
    """An HKS that requires timestamps and allows only HMAC-SHA1 PRF and MAC."""
    if ALLOW_SKIP and not FREERADIUS_READY:
        pytest.skip("HKP_ALLOW_SKIP=1 and no freeradius or not root")
    path = work_dir("strict")
    instance = FreeRadiusInstance(
        path,
        users=STRICT_USERS,
        require_timestamp=True,
        allowed_prfs=["HMAC-SHA1"],
        allowed_mac_algorithms=["HMAC-SHA1"],
        prohibited_users=[BARRED.decode()],
        authorization_policy=REALM_POLICY,
        module_settings={"log_summary_interval": "0"},  # a line per discard, for the tests
    )
    with instance:
        yield instance
    shutil.rmtree(path, ignore_errors=True)


from .ar_fixtures import ar_hks, hkp_ar, hks_and_ar, mn_socket, start_ar  # noqa: E402, F401
from .radsec_fixtures import radsec_hks, radsec_pki, start_tls_ar  # noqa: E402, F401
