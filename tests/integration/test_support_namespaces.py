"""hkp_support.namespaces: the one setns(2) path of hkp-ar ([ar] netns), the lab and
hkp-flood, in a real network namespace (as root)."""

from __future__ import annotations

import errno
import os
import secrets
import socket
import subprocess
from collections.abc import Iterator

import pytest

from hkp_support.namespaces import entered

from .conftest import requires_freeradius

pytestmark = [pytest.mark.integration, pytest.mark.netns, requires_freeradius]


def namespace_inode() -> int:
    return os.stat("/proc/self/ns/net").st_ino


@pytest.fixture
def namespace() -> Iterator[str]:
    name = f"hkpsupport-{secrets.token_hex(3)}"
    subprocess.run(["ip", "netns", "add", name], check=True)
    try:
        yield name
    finally:
        subprocess.run(["ip", "netns", "delete", name], check=False)


def test_the_block_runs_inside_and_its_sockets_stay_there(namespace: str) -> None:
    home = namespace_inode()
    with entered(namespace):
        assert namespace_inode() != home
        sock = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM)
    assert namespace_inode() == home
    with sock:  # a fresh namespace's lo is down: ::1 is not there to bind
        with pytest.raises(OSError) as unbound:
            sock.bind(("::1", 0))
        assert unbound.value.errno == errno.EADDRNOTAVAIL


def test_what_the_block_raises_passes_unchanged_and_we_come_back(namespace: str) -> None:
    home = namespace_inode()
    with pytest.raises(KeyError, match="from the block"), entered(namespace):
        raise KeyError("from the block")
    assert namespace_inode() == home


class ToolError(Exception):
    pass


def test_a_missing_namespace_is_the_callers_error_naming_it() -> None:
    with pytest.raises(OSError) as default:
        with entered("hkpsupport-none"):
            pytest.fail("entered a namespace that does not exist")
    assert default.value.errno == errno.ENOENT
    assert "network namespace 'hkpsupport-none'" in str(default.value)
    with pytest.raises(ToolError, match="network namespace 'hkpsupport-none'"):
        with entered("hkpsupport-none", lambda _errno, text: ToolError(text)):
            pass
