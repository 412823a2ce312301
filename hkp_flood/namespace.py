"""A network namespace with addresses on its loopback, for floods (as root).

`ip netns add NAME`, lo up, then every address given (nodad: usable at once) on lo, so
that a flood from many addresses of one /64 and MNs on other /64s all stay inside the
namespace: nothing leaves the host. `inside(name)` runs a block in the namespace (the
sockets it creates stay there).
"""

from __future__ import annotations

import contextlib
import os
import secrets
import subprocess
from collections.abc import Iterable

from hkp_support.namespaces import entered


class NamespaceError(Exception):
    pass


def _ip(*args: str, stdin: str | None = None) -> None:
    result = subprocess.run(["ip", *args], input=stdin, capture_output=True, text=True, check=False)
    if result.returncode != 0:
        raise NamespaceError(f"ip {' '.join(args)}: {result.stderr.strip()}")


def in_own_namespace() -> bool:
    """Whether this process runs in another network namespace than init's."""
    try:
        return os.stat("/proc/self/ns/net").st_ino != os.stat("/proc/1/ns/net").st_ino
    except OSError:
        return False


def inside(name: str) -> contextlib.AbstractContextManager[None]:
    """Run the block in network namespace `name` (hkp_support.namespaces)."""
    return entered(name, lambda _errno, text: NamespaceError(text))


class LoopbackNamespace:
    """`with LoopbackNamespace(addresses) as ns:` ns.name exists until the block ends."""

    def __init__(self, addresses: Iterable[str], prefix: str = "hkpflood") -> None:
        self.name = f"{prefix}-{secrets.token_hex(3)}"
        self.addresses = list(addresses)

    def create(self) -> LoopbackNamespace:
        _ip("netns", "add", self.name)
        try:
            _ip("-n", self.name, "link", "set", "lo", "up")
            batch = "".join(f"address add {a}/128 dev lo nodad\n" for a in self.addresses)
            if batch:
                _ip("-n", self.name, "-6", "-batch", "-", stdin=batch)
        except NamespaceError:
            self.destroy()
            raise
        return self

    def destroy(self) -> None:
        subprocess.run(["ip", "netns", "del", self.name], capture_output=True, check=False)

    def __enter__(self) -> LoopbackNamespace:
        return self.create()

    def __exit__(self, *exc: object) -> None:
        self.destroy()
