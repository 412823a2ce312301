"""systemd's service notification (sd_notify(3)) for `Type=notify`.

The protocol is one datagram of "KEY=VALUE" lines to the AF_UNIX socket named by
$NOTIFY_SOCKET (a leading "@" names an abstract socket). Without that variable (not
under systemd) nothing is sent. Written here rather than taken from a library: the
pure-Python `sdnotify` package is unmaintained since 2017 and `systemd-python` needs
libsystemd's headers to build; the whole protocol is the function below.
"""

from __future__ import annotations

import os
import socket

NOTIFY_SOCKET = "NOTIFY_SOCKET"


def notify(*lines: str) -> bool:
    """Send e.g. notify("READY=1", "STATUS=serving"); True when a datagram went out.
    A missing or broken socket never stops the daemon: readiness is best effort."""
    address = os.environ.get(NOTIFY_SOCKET)
    if not address:
        return False
    if address.startswith("@"):
        address = "\0" + address[1:]
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC) as sock:
            sock.connect(address)
            sock.sendall("\n".join(lines).encode())
    except OSError:
        return False
    return True
