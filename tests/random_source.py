"""A deterministic random source for the role tests (STYLE practice 2: randomness is
injected, so a test can reproduce every nonce, SPI and salt)."""

from __future__ import annotations

import hashlib


class CountingRandom:
    """Deterministic bytes: SHA-256 of a seed and a counter."""

    def __init__(self, seed: bytes = b"tests") -> None:
        self.seed = seed
        self.counter = 0

    def __call__(self, n: int) -> bytes:
        out = b""
        while len(out) < n:
            self.counter += 1
            out += hashlib.sha256(self.seed + self.counter.to_bytes(8, "big")).digest()
        return out[:n]
