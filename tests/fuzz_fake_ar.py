"""A small UDP AR for the hkp-fuzz mh tests: answers each datagram through a callback
in a thread (tests/test_fuzz_mh_answers.py, tests/test_fuzz_slow.py); the fixture
`fake_ar` (tests/conftest.py) starts them and closes them after the test."""

from __future__ import annotations

import socket
import threading
from collections.abc import Callable

Answer = Callable[[socket.socket, bytes, tuple[str, int]], None]


class FakeAr:
    """Answers each datagram through `answer(sock, data, peer)` until closed."""

    def __init__(self, answer: Answer) -> None:
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.settimeout(0.1)
        self.port = self.sock.getsockname()[1]
        self.answer = answer
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self) -> None:
        while not self.stop.is_set():
            try:
                data, peer = self.sock.recvfrom(65535)
            except TimeoutError:
                continue
            self.answer(self.sock, data, peer)

    def close(self) -> None:
        self.stop.set()
        self.thread.join()
        self.sock.close()
