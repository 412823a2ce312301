"""A tiny lossy UDP relay between an MN and an AR: drops the first `drop` datagrams the
MN sends, forwards everything else both ways. The lab and the tests use it to show the
MN's retransmission (draft §6.2.1) over real sockets."""

from __future__ import annotations

import os
import selectors
import socket
import threading


class LossyRelay:
    def __init__(self, ar_endpoint: tuple[str, int], drop: int = 1, listen: str = "::1") -> None:
        self.ar_endpoint = ar_endpoint
        self.drop = drop
        self.dropped = 0
        self.forwarded = 0
        family = socket.AF_INET6 if ":" in listen else socket.AF_INET
        self._front = socket.socket(family, socket.SOCK_DGRAM)
        self._front.bind((listen, 0))
        back_family = socket.AF_INET6 if ":" in ar_endpoint[0] else socket.AF_INET
        self._back = socket.socket(back_family, socket.SOCK_DGRAM)
        self._back.connect(ar_endpoint)
        self._wake_r, self._wake_w = os.pipe()
        self._mn: tuple[str, int] | None = None
        self._thread = threading.Thread(target=self._serve, name="lossy-relay", daemon=True)

    @property
    def endpoint(self) -> tuple[str, int]:
        host, port = self._front.getsockname()[:2]
        return str(host), int(port)

    def __enter__(self) -> LossyRelay:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    def close(self) -> None:
        if self._thread.is_alive():
            os.write(self._wake_w, b"x")
            self._thread.join(5.0)
        for sock in (self._front, self._back):
            sock.close()
        for fd in (self._wake_r, self._wake_w):
            os.close(fd)

    def _serve(self) -> None:
        with selectors.DefaultSelector() as selector:
            selector.register(self._front, selectors.EVENT_READ, "front")
            selector.register(self._back, selectors.EVENT_READ, "back")
            selector.register(self._wake_r, selectors.EVENT_READ, "stop")
            while True:
                for key, _ in selector.select():
                    if key.data == "stop":
                        return
                    try:
                        if key.data == "front":
                            data, self._mn = self._front.recvfrom(65535)
                            if self.dropped < self.drop:
                                self.dropped += 1
                                continue
                            self.forwarded += 1
                            self._back.send(data)
                        else:
                            data = self._back.recv(65535)
                            if self._mn is not None:
                                self._front.sendto(data, self._mn)
                    except OSError:
                        continue
