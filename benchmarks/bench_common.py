"""What the benchmark scripts share: signed HKReqs as MNs send them, a round's MN-side
figures, CPU per exchange, and their work directories.

Each script still owns its setups, its rounds and what it prints; only code that was
written the same several times lives here.
"""

from __future__ import annotations

import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from udpload import Result

from hkp_radius import crypto
from hkp_radius.constants import PRF, MacAlgorithm, MacSubtype, NonceSubtype, Status
from hkp_radius.wire.messages import HKReq, HKResp, decode_message
from hkp_radius.wire.options import HandoverNonce, MacOption, MobileNodeIdentifier, Timestamp


def work_root(prefix: str, parent: str) -> Path:
    """A fresh work directory under `parent` (on disk, not tmpfs), readable by freerad."""
    root = Path(tempfile.mkdtemp(prefix=prefix, dir=parent))
    root.chmod(0o755)
    return root


def signed_hkreq(
    nai: str, hmk: bytes, message_id: int, care_of_address: bytes, mn_nonce: bytes, timestamp: int
) -> bytes:
    """An HKReq as an MN sends it (draft §6.2.1, P2, P3), its MN-HKS MAC filled in."""
    message = HKReq(
        message_id,
        False,
        PRF.HMAC_SHA1,
        care_of_address,
        (
            MobileNodeIdentifier(nai.encode()),
            HandoverNonce(NonceSubtype.MN_NONCE, mn_nonce),
            Timestamp(timestamp),
            MacOption(MacSubtype.MN_HKS, MacAlgorithm.HMAC_SHA1),
        ),
    )
    hik = crypto.derive_hik(hmk, PRF.HMAC_SHA1, message_id, MacAlgorithm.HMAC_SHA1)
    return crypto.sign_message(message, {MacSubtype.MN_HKS: hik})


def hkresp_statuses(answers: list[bytes]) -> dict[str, int]:
    """How many answers carried each HKResp Status (by name); others as "not-an-HKResp"."""
    statuses: dict[str, int] = {}
    for answer in answers:
        message = decode_message(answer)
        name = Status(message.status).name if isinstance(message, HKResp) else "not-an-HKResp"
        statuses[name] = statuses.get(name, 0) + 1
    return statuses


def hkresp_figures(result: Result) -> dict[str, Any]:
    """The MN side of a round of HKReqs (run with keep_answers): keys/s (SUCCESS HKResps
    per second), latency p50 and p99, failures, retransmissions, statuses."""
    statuses = hkresp_statuses(result.answers)
    return {
        "keys_per_s": statuses.get("SUCCESS", 0) / result.wall,
        "p50_ms": result.percentile(50) * 1e3,
        "p99_ms": result.percentile(99) * 1e3,
        "failed": result.failed,
        "retransmissions": result.retransmissions,
        "statuses": statuses,
    }


def cpu_us_per_exchange(
    before: Mapping[str, float], after: Mapping[str, float], exchanges: int
) -> dict[str, float]:
    """CPU microseconds per exchange of each named process between two readings (seconds,
    e.g. udpload.cpu_seconds); a name missing `before` started from zero."""
    return {
        name: (seconds - before.get(name, 0.0)) / max(1, exchanges) * 1e6
        for name, seconds in after.items()
    }
