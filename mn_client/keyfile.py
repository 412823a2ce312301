"""Held keys and per-identity MN state in a small JSON file (mode 0600), so that
`hkp-mn verify` after `hkp-mn request` works across invocations.

The file holds HKs (that is its purpose), so it is created 0600 and replaced
atomically; nothing here logs its content.
"""

from __future__ import annotations

import json
import os
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from hkp_radius.errors import HKPError
from hkp_radius.mn import HeldKey, KeyStore, MobileNode

FILE_VERSION = 1


def default_path() -> Path:
    if env := os.environ.get("HKP_MN_KEYS"):
        return Path(env)
    state = os.environ.get("XDG_STATE_HOME") or os.path.join(Path.home(), ".local", "state")
    return Path(state) / "hkp-mn" / "keys.json"


@dataclass
class IdentityState:
    """What an MN remembers between runs besides keys (P5 clock offset, §6.2.2.1)."""

    clock_offset: float = 0.0
    last_timestamp: int = 0  # of the last successful HKReq (§5.2.3 floor)
    last_sent_timestamp: int = 0  # of the last HKReq sent (its answer may have been lost)
    prohibited: list[bytes] = field(default_factory=list)


class KeyFileError(Exception):
    """The key file cannot be read or written; the message says which and why."""


@dataclass
class KeyFile:
    path: Path
    keys: KeyStore = field(default_factory=KeyStore)
    identities: dict[bytes, IdentityState] = field(default_factory=dict)

    @classmethod
    def load(cls, path: Path) -> KeyFile:
        if not path.exists():
            return cls(path)
        try:
            raw = json.loads(path.read_text(encoding="utf-8"))
            if raw.get("version") != FILE_VERSION:
                raise ValueError(f"version {raw.get('version')!r}, expected {FILE_VERSION}")
            keys = KeyStore([_key_from_json(k) for k in raw.get("keys", [])])
            identities = {
                nai.encode("utf-8"): IdentityState(
                    float(v.get("clock_offset", 0.0)),
                    int(v.get("last_timestamp", 0)),
                    int(v.get("last_sent_timestamp", v.get("last_timestamp", 0))),
                    [bytes.fromhex(a) for a in v.get("prohibited", [])],
                )
                for nai, v in raw.get("identities", {}).items()
            }
        except (OSError, ValueError, KeyError, TypeError, AttributeError, HKPError) as exc:
            raise KeyFileError(
                f"key file {path} is unreadable ({type(exc).__name__}: {exc}); "
                "move it away to start afresh"
            ) from None
        return cls(path, keys, identities)

    def restore(self, node: MobileNode) -> None:
        """Give `node` the identity state remembered for its NAI."""
        state = self.identities.get(node.config.nai)
        if state is not None:
            node.clock.offset = state.clock_offset
            node.clock.floor = state.last_timestamp
            node.clock.last_sent = state.last_sent_timestamp
            node.prohibited = set(state.prohibited)

    def remember(self, node: MobileNode) -> None:
        self.identities[node.config.nai] = IdentityState(
            node.clock.offset, node.clock.floor, node.clock.last_sent, sorted(node.prohibited)
        )

    def save(self) -> None:
        document: dict[str, Any] = {
            "version": FILE_VERSION,
            "keys": [_key_to_json(k) for k in self.keys.all()],
            "identities": {
                nai.decode("utf-8", "replace"): {
                    "clock_offset": s.clock_offset,
                    "last_timestamp": s.last_timestamp,
                    "last_sent_timestamp": s.last_sent_timestamp,
                    "prohibited": [a.hex() for a in s.prohibited],
                }
                for nai, s in self.identities.items()
            },
        }
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
            fd, temporary = tempfile.mkstemp(dir=self.path.parent, prefix=".keys-")
            try:
                os.fchmod(fd, 0o600)
                with os.fdopen(fd, "w", encoding="utf-8") as handle:
                    json.dump(document, handle, indent=1)
                os.replace(temporary, self.path)
            except BaseException:
                os.unlink(temporary)
                raise
        except OSError as exc:
            raise KeyFileError(f"cannot write key file {self.path}: {exc.strerror}") from None


def _key_to_json(key: HeldKey) -> dict[str, Any]:
    return {
        "nai": key.nai.decode("utf-8", "replace"),
        "ar_id": key.ar_id.hex(),
        "spi": key.spi,
        "lifetime": key.lifetime,
        "established_at": key.established_at,
        "expires_at": key.expires_at,
        "prf": key.prf,
        "mac_algorithm": key.mac_algorithm,
        "care_of_address": key.care_of_address.hex(),
        "hk": key.hk.hex(),
    }


def _key_from_json(raw: dict[str, Any]) -> HeldKey:
    return HeldKey(
        nai=str(raw["nai"]).encode("utf-8"),
        ar_id=bytes.fromhex(raw["ar_id"]),
        spi=int(raw["spi"]),
        lifetime=int(raw["lifetime"]),
        established_at=float(raw["established_at"]),
        expires_at=float(raw["expires_at"]),
        prf=int(raw["prf"]),
        mac_algorithm=int(raw["mac_algorithm"]),
        care_of_address=bytes.fromhex(raw["care_of_address"]),
        hk=bytes.fromhex(raw["hk"]),
    )
