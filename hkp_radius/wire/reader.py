"""The one bounds-checked reader (STYLE practice 4, after dnspython's wirebase).

Every short read raises TruncatedError; a length-prefixed region read with
`restrict_to` must be consumed exactly.
"""

from __future__ import annotations

from hkp_radius.errors import LengthMismatchError, TruncatedError


class Reader:
    __slots__ = ("_data", "_end", "_pos")

    def __init__(self, data: bytes, start: int = 0, end: int | None = None) -> None:
        self._data = data
        self._pos = start
        self._end = len(data) if end is None else end

    @property
    def position(self) -> int:
        return self._pos

    def remaining(self) -> int:
        return self._end - self._pos

    def read(self, count: int, what: str) -> bytes:
        if count > self.remaining():
            raise TruncatedError(
                f"{what}: needs {count} octets at offset {self._pos}, "
                f"only {self.remaining()} remain"
            )
        chunk = self._data[self._pos : self._pos + count]
        self._pos += count
        return chunk

    def u8(self, what: str) -> int:
        return self.read(1, what)[0]

    def u16(self, what: str) -> int:
        return int.from_bytes(self.read(2, what), "big")

    def u32(self, what: str) -> int:
        return int.from_bytes(self.read(4, what), "big")

    def u64(self, what: str) -> int:
        return int.from_bytes(self.read(8, what), "big")

    def restrict_to(self, count: int, what: str) -> Reader:
        """A sub-reader over the next `count` octets; this reader skips past them."""
        if count > self.remaining():
            raise TruncatedError(
                f"{what}: declares {count} octets at offset {self._pos}, "
                f"only {self.remaining()} remain"
            )
        sub = Reader(self._data, self._pos, self._pos + count)
        self._pos += count
        return sub

    def expect_end(self, what: str) -> None:
        if self._pos != self._end:
            raise LengthMismatchError(
                f"{what}: {self._end - self._pos} octets left over at offset {self._pos}"
            )
