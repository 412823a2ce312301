"""The MN's HMK file: the key written as FreeRADIUS's users file writes an octets value
(`0x` and hex), or bare hex; surrounding whitespace is ignored. Anything else is refused
with a message: text is never taken as raw octets, so a mistyped file cannot become a
wrong key that fails silently at the HKS."""

from __future__ import annotations

import string
from pathlib import Path

HEX = frozenset(string.hexdigits)


class HmkFileError(Exception):
    """The HMK file is missing or not an HMK; the message says which, never the content."""


def parse_hmk(text: str, origin: str) -> bytes:
    value = text.strip()
    if value[:2] in ("0x", "0X"):
        value = value[2:]
    if not value:
        raise HmkFileError(f"{origin} is empty: write the HMK as 0x<hex> or <hex>")
    if not set(value) <= HEX or len(value) % 2:
        raise HmkFileError(
            f"{origin} is not an HMK: write it as the users file does, 0x<hex>, or as bare "
            "hex (an even number of hex digits, nothing else)"
        )
    return bytes.fromhex(value)


def read_hmk_file(path: str | Path) -> bytes:
    try:
        raw = Path(path).read_bytes()
    except OSError as exc:
        raise HmkFileError(f"cannot read HMK file {path}: {exc.strerror}") from None
    try:
        text = raw.decode("ascii")
    except UnicodeDecodeError:
        raise HmkFileError(
            f"HMK file {path} is not text: write the HMK as 0x<hex> or bare hex"
        ) from None
    return parse_hmk(text, f"HMK file {path}")
