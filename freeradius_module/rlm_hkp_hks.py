"""rlm_python3 adapter for the HKS: attribute lists in, the core's decision out.

Loaded by FreeRADIUS (mods-available/hkp_hks, `pass_all_vps_dict = yes`). Every rule
is in `hkp_radius.hks`; this file only translates FreeRADIUS's tuples of strings
(octets as '0x…' hex) into an `HKSRequest` and the decision back into reply tuples.
It never logs key material, and never lets an exception out to FreeRADIUS.

The HK leaves this module salt-encrypted (RFC 2548 §2.4.2, `hkp_radius.salt`), in
HKP-Handover-Key-Salted: rlm_python3 prints every attribute a module returns at
debug level, so a plaintext HK would be in `freeradius -X` output. The secret and
Request Authenticator come from policy hkp_hks_salt_inputs (policy.d/hkp_hks).
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from freeradius_module.config import parse_module_config
from freeradius_module.replay_sqlite import SQLiteReplayStore
from hkp_radius.crypto import salt
from hkp_radius.errors import ConfigError, DecodeError, HKPError
from hkp_radius.hks.role import (
    Accept,
    Decision,
    Discard,
    DiscardReason,
    HKSPolicy,
    HKSRequest,
    Reject,
    ReplayStore,
    handle_request,
)
from hkp_radius.wire import radius_attrs as attrs

try:  # provided by rlm_python3 inside FreeRADIUS only
    import radiusd
except ImportError:  # imported outside FreeRADIUS (tests, linters)
    radiusd = None

# rlm_python3 exports these; RLM_MODULE_FAIL it does not (rlm_rcode_t order).
RLM_MODULE_REJECT = 0
RLM_MODULE_FAIL = 1
RLM_MODULE_OK = 2
L_INFO = 3
L_ERR = 4

_state: dict[str, Any] = {}

Pairs = Iterable[tuple[str, str]]
Seal = Callable[[bytes], bytes]

MISSING_SALT_INPUTS = (
    f"control:{attrs.RADIUS_SECRET} or control:{attrs.REQUEST_AUTHENTICATOR} is missing "
    "or malformed, so the HK cannot be salt-encrypted: call policy hkp_hks_salt_inputs "
    "right before hkp_hks (see sites-available/hkp_hks)"
)


def _log(level: int, message: str) -> None:
    if radiusd is not None:
        radiusd.radlog(level, "hkp_hks: " + message)


def instantiate(config: object = None) -> int:
    """Read `config { }` and open the replay store. A negative return stops start-up
    (the only way to stop it from Python), with the reason in the log."""
    source = getattr(radiusd, "config", None) if radiusd is not None else None
    try:
        module_config = parse_module_config(source if isinstance(source, dict) else {})
        _state["policy"] = module_config.policy
        _state["replay"] = SQLiteReplayStore(module_config.replay_db)
    except ConfigError as exc:
        _log(L_ERR, f"cannot start: {exc}")
        return -1
    except Exception as exc:
        # rlm_python3 reads an exception here as a positive (start-up continues) code:
        # only -1 stops a server that would fail every request.
        _log(L_ERR, f"cannot start: internal error: {type(exc).__name__}: {exc}")
        return -1
    _log(L_INFO, f"ready (replay state in {module_config.replay_db})")
    return 0


def detach(_: object = None) -> int:
    replay = _state.pop("replay", None)
    if replay is not None:
        replay.close()
    return 0


def _values(pairs: Pairs, name: str) -> list[str]:
    return [value for key, value in pairs if key == name]


def _first(pairs: Pairs, name: str) -> str | None:
    values = _values(pairs, name)
    return values[0] if values else None


def request_from_lists(lists: Mapping[str, Any]) -> HKSRequest:
    """The HKSRequest for rlm_python3's `pass_all_vps_dict` lists. Values the AR got
    wrong become None, which the core turns into a discard."""
    request = tuple(lists.get("request") or ())
    control = tuple(lists.get("config") or ())
    user_name = _first(request, attrs.USER_NAME)
    try:
        mh: bytes | None = attrs.join_mobility_header(
            attrs.from_hex(v, attrs.MOBILITY_HEADER)
            for v in _values(request, attrs.MOBILITY_HEADER)
        )
    except DecodeError:
        mh = None
    ar_text = _values(request, attrs.AR_ADDRESS)
    ar_address = None
    if len(ar_text) == 1:  # two AR addresses: ambiguous, unusable
        try:
            ar_address = attrs.ipv6_octets(ar_text[0], attrs.AR_ADDRESS)
        except DecodeError:
            ar_address = None
    hmk_values = _values(control, attrs.HMK)
    hmk = None
    if len(hmk_values) == 1:
        try:
            hmk = attrs.from_hex(hmk_values[0], attrs.HMK)
        except DecodeError:
            hmk = None
    prohibited = attrs.AUTHORIZATION_PROHIBIT in _values(control, attrs.AUTHORIZATION)
    return HKSRequest(
        user_name=user_name.encode("utf-8") if user_name is not None else None,
        mobility_header=mh,
        ar_address=ar_address,
        hmk=hmk,
        authorized=not prohibited,
    )


def salt_inputs_from_lists(lists: Mapping[str, Any]) -> tuple[bytes, bytes] | None:
    """(RADIUS secret, Request Authenticator) from the control list, as policy
    hkp_hks_salt_inputs put them there; None when either is missing or malformed."""
    control = tuple(lists.get("config") or ())
    secrets = _values(control, attrs.RADIUS_SECRET)
    vectors = _values(control, attrs.REQUEST_AUTHENTICATOR)
    if len(secrets) != 1 or len(vectors) != 1:
        return None
    try:
        secret = attrs.from_hex(secrets[0], attrs.RADIUS_SECRET)
        vector = attrs.from_hex(vectors[0], attrs.REQUEST_AUTHENTICATOR)
    except DecodeError:
        return None
    prefix = attrs.RADIUS_SECRET_PREFIX
    if not secret.startswith(prefix) or len(secret) == len(prefix):
        return None
    if len(vector) != salt.REQUEST_AUTHENTICATOR_LENGTH:
        return None
    return secret[len(prefix) :], vector


def sealer(secret: bytes, request_authenticator: bytes) -> Seal:
    """Salt-encrypts an HK for the reply to this request, with a fresh salt."""

    def seal(handover_key: bytes) -> bytes:
        return salt.salt_encrypt(
            handover_key, secret, request_authenticator, salt.new_salt(os.urandom)
        )

    return seal


def reply_for(
    decision: Decision, seal: Seal
) -> tuple[int, dict[str, tuple[tuple[str, str, str], ...]]]:
    """The rlm_python3 return value for a decision (P8). `seal` salt-encrypts the HK:
    the plaintext never leaves this module."""
    if isinstance(decision, Accept):
        reply = [
            (attrs.HANDOVER_KEY_SALTED, ":=", attrs.to_hex(seal(decision.handover_key))),
            (attrs.HKS_NONCE, ":=", attrs.to_hex(decision.hks_nonce)),
            (attrs.KEY_LIFETIME, ":=", str(decision.lifetime)),
            (attrs.PRF_ATTRIBUTE, ":=", str(decision.prf)),
        ]
        if decision.timestamp is not None:
            reply.append(
                (attrs.TIMESTAMP, ":=", attrs.to_hex(decision.timestamp.to_bytes(8, "big")))
            )
        return RLM_MODULE_OK, {"reply": tuple(reply)}
    if isinstance(decision, Reject):
        return RLM_MODULE_REJECT, {
            "reply": (
                (attrs.STATUS_CODE, ":=", str(int(decision.status))),
                (attrs.RESPONSE_HEADER, ":=", attrs.to_hex(decision.response_header)),
            )
        }
    if decision.ar_error:
        return RLM_MODULE_REJECT, {
            "reply": ((attrs.REPLY_MESSAGE, ":=", f"hkp_hks: {decision.reason.value}"),)
        }
    return RLM_MODULE_REJECT, {}


def describe(decision: Decision, request: HKSRequest) -> tuple[int, str]:
    """One log line (level, text) without key material."""
    who = repr(request.user_name.decode("utf-8", "replace")) if request.user_name else "-"
    if isinstance(decision, Accept):
        return L_INFO, f"Accept {who}: HK issued, PRF {decision.prf}"
    if isinstance(decision, Reject):
        return L_INFO, f"Reject {who}: {decision.status.name} ({decision.detail})"
    level = L_ERR if decision.reason is DiscardReason.HMK_TOO_SHORT else L_INFO
    detail = f" ({decision.detail})" if decision.detail else ""
    return level, f"Discard {who}: {decision.reason.value}{detail}"


def decide(lists: Mapping[str, Any], policy: HKSPolicy, replay: ReplayStore) -> Decision:
    request = request_from_lists(lists)
    decision = handle_request(request, policy, replay, time.time(), os.urandom)
    level, text = describe(decision, request)
    _log(level, text)
    return decision


def authenticate(p: Mapping[str, Any]) -> Any:
    """rlm_python3 entry point (Auth-Type HKP)."""
    try:
        policy = _state["policy"]
        replay = _state["replay"]
        salt_inputs = salt_inputs_from_lists(p)
        if salt_inputs is None:
            # Checked before deciding: an accept that cannot be sent must not
            # advance the replay state.
            _log(L_ERR, f"request failed: {MISSING_SALT_INPUTS}")
            return RLM_MODULE_FAIL, {}
        return reply_for(decide(p, policy, replay), sealer(*salt_inputs))
    except HKPError as exc:
        _log(L_ERR, f"request failed: {type(exc).__name__}: {exc}")
    except Exception as exc:
        _log(L_ERR, f"internal error: {type(exc).__name__}")
    return RLM_MODULE_FAIL, {}


__all__ = ["Discard", "authenticate", "detach", "instantiate"]
