"""What the credential-store tests (test_hks_sql_credentials, test_hks_ldap_credentials)
share: an HKS whose HMKs come from a shipped module, and the checks on its answers and
its -X log."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pyrad.packet

from hkp_radius import crypto
from hkp_radius.wire import radius_attrs as ra
from hkp_support.freeradius import FreeRadiusInstance

from .hks_client import AR_ADDRESS, BuiltRequest, attributes, build_hkreq, now_ntp, send

# The row of the shipped mods-config/sql/hkp/*/example.sql (and ldap/hkp/example.ldif).
EXAMPLE_NAI = b"mn@example.net"
EXAMPLE_HMK = bytes(range(64))


def expect_key(reply: object, built: BuiltRequest, hmk: bytes) -> None:
    assert reply.code == pyrad.packet.AccessAccept  # type: ignore[attr-defined]
    grant = ra.parse_accept(attributes(reply))
    assert grant.handover_key == crypto.derive_hk(
        hmk, built.prf, built.mn_nonce, grant.hks_nonce, built.nai, AR_ADDRESS
    )


def no_hmk_in(text: str, *hmks: bytes) -> None:
    for hmk in hmks:
        for form in (hmk.hex(), hmk.hex().upper(), hmk[:16].hex()):
            assert form not in text


def credential_hks(
    work: Path, module: str, text: str, *, listed: str | None = None, **options: Any
) -> FreeRadiusInstance:
    """An HKS at -X (its log is FreeRADIUS's debug output) whose site lists `listed`
    (default: `module`) where hkp_users stood, `module` defined by `text`."""
    return FreeRadiusInstance(
        work,
        credential_module=listed or module,
        extra_modules={module: text},
        debug=True,
        **options,
    )


def log_of_one_key(instance: FreeRadiusInstance, nai: bytes, hmk: bytes, message_id: int) -> str:
    """Start `instance`, get one key for `nai` from it, stop it: its log."""
    with instance:
        built = build_hkreq(nai, hmk, message_id=message_id, timestamp=now_ntp(1))
        expect_key(send(instance.client(), built), built, hmk)
    return instance.log_text()
