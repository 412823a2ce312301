"""Assertion helpers for the core tests, standard library only.

The core's unit tests run under pytest and also under Debian's `/usr/bin/python3 -S`
(FreeRADIUS's interpreter, no site packages: issue 2 point 6), so they use plain
functions, plain asserts and this module instead of pytest's fixtures and helpers.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator


class _Caught:
    value: BaseException | None = None


@contextlib.contextmanager
def raises(expected: type[BaseException], match: str = "") -> Iterator[_Caught]:
    caught = _Caught()
    try:
        yield caught
    except expected as exc:
        caught.value = exc
        if match and match.lower() not in str(exc).lower():
            raise AssertionError(
                f"{type(exc).__name__}({exc!s}) does not mention {match!r}"
            ) from exc
        return
    raise AssertionError(f"{expected.__name__} was not raised")
