"""Reader for the hand-written vectors in tests/vectors/*.vec (format: tests/vectors/README.md).

Standard library only, and independent of hkp_radius on purpose: the vectors check that code,
so nothing here may come from it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

VECTOR_DIR = Path(__file__).resolve().parent / "vectors"

# One value per kind of vector; a file with another kind is a typo, not a new kind.
KINDS = frozenset({"hkreq", "hkresp", "hik", "hk", "gprf", "malformed"})

_KEY = re.compile(r"[a-z][a-z0-9_]*")
_HEX = re.compile(r"[0-9a-fA-F]*")


class VectorFileError(ValueError):
    """A .vec file that does not follow the format; the message names the file and line."""

    def __init__(self, source: str, line: int, reason: str) -> None:
        super().__init__(f"{source}, line {line}: {reason}")
        self.source = source
        self.line = line
        self.reason = reason


@dataclass(frozen=True)
class Vector:
    name: str
    kind: str
    fields: dict[str, str]
    data: bytes

    def hex(self, key: str) -> bytes:
        """A metadata field holding octets as hex (hmk, mn_nonce, hik, seed, ...)."""
        return bytes.fromhex(self.fields[key])

    def integer(self, key: str) -> int:
        """A metadata field holding a decimal integer (message_id, prf, status, y, ...)."""
        return int(self.fields[key], 10)


def parse_vector(text: str, source: str = "<string>") -> Vector:
    """Parse the text of one .vec file. Raises VectorFileError naming source and line."""
    fields: dict[str, str] = {}
    data = bytearray()
    state = "header"  # header -> bytes -> done
    lineno = 0
    for lineno, raw in enumerate(text.splitlines(), start=1):
        line = raw.split("#", 1)[0].strip()
        if not line:
            continue
        if state == "done":
            raise VectorFileError(source, lineno, f"text after 'end': {line!r}")
        if state == "bytes":
            if line == "end":
                state = "done"
                continue
            digits = "".join(line.split())
            if not _HEX.fullmatch(digits):
                raise VectorFileError(source, lineno, f"not hex: {line!r}")
            if len(digits) % 2:
                raise VectorFileError(source, lineno, f"odd number of hex digits: {line!r}")
            data += bytes.fromhex(digits)
            continue
        key, sep, value = line.partition(":")
        key, value = key.strip(), value.strip()
        if not sep or not _KEY.fullmatch(key):
            raise VectorFileError(source, lineno, f"expected 'key: value', got {line!r}")
        if key == "bytes":
            if value:
                raise VectorFileError(source, lineno, "'bytes:' takes no value; hex goes below it")
            state = "bytes"
            continue
        if key in fields:
            raise VectorFileError(source, lineno, f"field {key!r} given twice")
        if not value:
            raise VectorFileError(source, lineno, f"field {key!r} has no value")
        fields[key] = value
    if state != "done":
        missing = "'bytes:'" if state == "header" else "'end'"
        raise VectorFileError(source, lineno, f"file ends before {missing}")
    for required in ("name", "kind"):
        if required not in fields:
            raise VectorFileError(source, lineno, f"no {required!r} field")
    name, kind = fields.pop("name"), fields.pop("kind")
    if kind not in KINDS:
        raise VectorFileError(
            source, lineno, f"unknown kind {kind!r}, expected one of {sorted(KINDS)}"
        )
    return Vector(name=name, kind=kind, fields=fields, data=bytes(data))


def load_vector_file(path: Path) -> Vector:
    vector = parse_vector(path.read_text(encoding="utf-8"), source=str(path))
    if vector.name != path.stem:
        raise VectorFileError(str(path), 1, f"name {vector.name!r} differs from the file name")
    return vector


def load_vectors(kind: str | None = None, directory: Path = VECTOR_DIR) -> list[Vector]:
    """Every vector in directory (sorted by name), or only those of one kind."""
    if kind is not None and kind not in KINDS:
        raise ValueError(f"unknown kind {kind!r}, expected one of {sorted(KINDS)}")
    vectors = [load_vector_file(path) for path in sorted(directory.glob("*.vec"))]
    return [v for v in vectors if kind is None or v.kind == kind]
