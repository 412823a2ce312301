"""The integration tests' prerequisites, checked first and by name."""

from __future__ import annotations

import os

from hkp_support.freeradius import FREERADIUS

from .conftest import ALLOW_SKIP


def test_integration_prerequisites_are_present() -> None:
    """The integration tests run for real: Debian's freeradius with its python3 module,
    radclient, root, and network namespaces (ip netns). A missing piece fails here with
    what to install instead of as a confusing error further on."""
    missing = [
        path
        for path in (FREERADIUS, "/usr/bin/radclient", "/usr/bin/python3", "/usr/sbin/ip")
        if not os.path.exists(path)
    ]
    assert not missing, f"missing {missing}: run scripts/install.sh as root"
    modules = ("/usr/lib/freeradius/rlm_python3.so",)
    assert all(os.path.exists(m) for m in modules), "install Debian's freeradius-python3"
    assert os.geteuid() == 0 or ALLOW_SKIP, "run the integration tests as root (CI does)"
