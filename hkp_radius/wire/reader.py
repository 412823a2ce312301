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

    # `what` names the field in an error; with `args` it is a %-format built only when
    # the read fails, so that a successful decode formats no strings.

    def _short(self, count: int, what: str, args: tuple[object, ...], verb: str) -> TruncatedError:
        name = what % args if args else what
        return TruncatedError(
            f"{name}: {verb} {count} octets at offset {self._pos}, only {self.remaining()} remain"
        )

    def read(self, count: int, what: str, *args: object) -> bytes:
        pos = self._pos
        end = pos + count
        if end > self._end:
            raise self._short(count, what, args, "needs")
        self._pos = end
        return self._data[pos:end]

    def u8(self, what: str, *args: object) -> int:
        pos = self._pos
        if pos >= self._end:
            raise self._short(1, what, args, "needs")
        self._pos = pos + 1
        return self._data[pos]

    def u16(self, what: str) -> int:
        return int.from_bytes(self.read(2, what), "big")

    def u32(self, what: str) -> int:
        return int.from_bytes(self.read(4, what), "big")

    def u64(self, what: str) -> int:
        return int.from_bytes(self.read(8, what), "big")

    def restrict_to(self, count: int, what: str, *args: object) -> Reader:
        """A sub-reader over the next `count` octets; this reader skips past them."""
        pos = self._pos
        if pos + count > self._end:
            raise self._short(count, what, args, "declares")
        self._pos = pos + count
        return Reader(self._data, pos, pos + count)

    def expect_end(self, what: str, *args: object) -> None:
        if self._pos != self._end:
            name = what % args if args else what
            raise LengthMismatchError(
                f"{name}: {self._end - self._pos} octets left over at offset {self._pos}"
            )
