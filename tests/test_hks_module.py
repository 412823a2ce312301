"""The HKS's FreeRADIUS adapter (freeradius_module/rlm_hkp_hks.py) without FreeRADIUS:
attribute lists in, reply tuples out, strict identities (issue 15) and bounded logs."""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator
from types import ModuleType

from freeradius_module import rlm_hkp_hks as module
from freeradius_module.rlm_hkp_hks import request_from_lists, salt_inputs_from_lists
from hkp_radius import crypto
from hkp_radius.constants import PRF, Status
from hkp_radius.crypto import salt
from hkp_radius.hks.log_summary import DecisionLog, Severity
from hkp_radius.hks.role import (
    Accept,
    Discard,
    DiscardReason,
    HKSPolicy,
    MemoryReplayStore,
    Reject,
)
from hkp_radius.wire import ntp
from hkp_radius.wire import radius_attrs as ra
from tests.test_hks import AR, HMK, MN_NONCE, NAI, hkreq

RADIUS_SECRET = b"ar-secret"
REQUEST_AUTHENTICATOR = bytes(range(100, 116))
Lists = dict[str, tuple[tuple[str, str], ...]]


def module_lists(
    wire: bytes,
    *,
    salt_inputs: bool = True,
    user_names: tuple[bytes, ...] = (NAI,),
    ar_addresses: tuple[str, ...] = (ra.ipv6_text(AR),),
    copy_user_name: bool = True,
) -> Lists:
    """What rlm_python3 (pass_all_vps_dict) hands the module for one Access-Request:
    strings cut at their first NUL, the first User-Name's octets in the control list
    (policy hkp_hks_select)."""
    control = [(ra.HMK, ra.to_hex(HMK))]
    if copy_user_name and user_names:
        control.append((ra.USER_NAME_OCTETS, ra.to_hex(user_names[0])))
    if salt_inputs:
        control.append((ra.RADIUS_SECRET, ra.to_hex(ra.RADIUS_SECRET_PREFIX + RADIUS_SECRET)))
        control.append((ra.REQUEST_AUTHENTICATOR, ra.to_hex(REQUEST_AUTHENTICATOR)))
    request = [(ra.USER_NAME, name.split(b"\0")[0].decode()) for name in user_names]
    request.append((ra.MOBILITY_HEADER, ra.to_hex(wire)))
    request += [(ra.AR_ADDRESS, address) for address in ar_addresses]
    return {"request": tuple(request), "config": tuple(control)}


@contextlib.contextmanager
def module_state(interval: float = 10.0) -> Iterator[tuple[ModuleType, MemoryReplayStore]]:
    """The adapter with its policy and a fresh replay store, as instantiate leaves it."""
    replay = MemoryReplayStore()
    saved = dict(module._state)
    module._state.update(policy=HKSPolicy(), replay=replay, log=DecisionLog(interval))
    try:
        yield module, replay
    finally:
        module._state.clear()
        module._state.update(saved)


def fresh_request(**kwargs: object) -> Lists:
    return module_lists(hkreq(timestamp=ntp.to_ntp(time.time())), **kwargs)  # type: ignore[arg-type]


def test_module_returns_the_hk_salt_encrypted_only():
    with module_state() as (module, replay):
        timestamp = ntp.to_ntp(time.time())  # the adapter reads the clock itself
        rcode, lists = module.authenticate(module_lists(hkreq(timestamp=timestamp)))
        assert rcode == module.RLM_MODULE_OK
        reply = {name: value for name, _, value in lists["reply"]}
        assert ra.HANDOVER_KEY not in reply  # the plaintext attribute is never returned
        value = ra.from_hex(reply[ra.HANDOVER_KEY_SALTED])
        hk = salt.salt_decrypt(value, RADIUS_SECRET, REQUEST_AUTHENTICATOR)
        hks_nonce = ra.from_hex(reply[ra.HKS_NONCE])
        assert hk == crypto.derive_hk(HMK, PRF.HMAC_SHA1, MN_NONCE, hks_nonce, NAI, AR)
        assert hk.hex() not in repr(lists).lower()
        assert replay.last_accepted(NAI) == timestamp


def test_module_fails_without_salt_inputs_and_keeps_the_replay_state():
    with module_state() as (module, replay):
        wire = hkreq(timestamp=ntp.to_ntp(time.time()))
        failed = module.authenticate(module_lists(wire, salt_inputs=False))
        assert failed == (module.RLM_MODULE_FAIL, {})
        assert replay.last_accepted(NAI) is None  # nothing was issued, nothing advanced


def test_module_fails_without_the_user_name_copy():
    """A site whose authorize lacks hkp_hks_select: refused, not read NUL-blind."""
    with module_state() as (module, replay):
        failed = module.authenticate(fresh_request(copy_user_name=False))
        assert failed == (module.RLM_MODULE_FAIL, {})
        assert replay.last_accepted(NAI) is None


def test_module_reads_salt_inputs_strictly():
    def lists(secret: str, vector: str) -> dict[str, object]:
        return {"config": ((ra.RADIUS_SECRET, secret), (ra.REQUEST_AUTHENTICATOR, vector))}

    good_vector = ra.to_hex(REQUEST_AUTHENTICATOR)
    # a secret that itself begins with "0x" survives: the "s:" prefix keeps it octets
    assert salt_inputs_from_lists(lists(ra.to_hex(b"s:0xabc"), good_vector)) == (
        b"0xabc",
        REQUEST_AUTHENTICATOR,
    )
    for secret, vector in [
        (ra.to_hex(b"no-prefix"), good_vector),
        (ra.to_hex(b"s:"), good_vector),  # an empty secret
        (ra.to_hex(b"s:x"), ra.to_hex(bytes(15))),
        ("s:x", good_vector),  # not FreeRADIUS's octets rendering
    ]:
        assert salt_inputs_from_lists(lists(secret, vector)) is None
    assert salt_inputs_from_lists({"config": ()}) is None


# ---- strict identities (issue 15, Must show 3) ------------------------------------------

OTHER = b"other@example.net"
SPELLINGS = {
    # name: (lists for the request, the reason it is discarded with)
    "trailing NUL": (
        {"user_names": (NAI + b"\0",)},
        DiscardReason.USER_NAME_MISMATCH,
    ),
    "second User-Name": ({"user_names": (NAI, NAI)}, DiscardReason.USER_NAME_NOT_ONE),
    "second, other User-Name": ({"user_names": (NAI, OTHER)}, DiscardReason.USER_NAME_NOT_ONE),
    "other MN's User-Name": ({"user_names": (OTHER,)}, DiscardReason.USER_NAME_MISMATCH),
    "no User-Name": ({"user_names": ()}, DiscardReason.USER_NAME_NOT_ONE),
    "AR address ::": ({"ar_addresses": ("::",)}, DiscardReason.AR_ADDRESS_NOT_GLOBAL),
    "AR address ::1": ({"ar_addresses": ("::1",)}, DiscardReason.AR_ADDRESS_NOT_GLOBAL),
    "multicast AR": ({"ar_addresses": ("ff02::1",)}, DiscardReason.AR_ADDRESS_NOT_GLOBAL),
    "link-local AR": ({"ar_addresses": ("fe80::1",)}, DiscardReason.AR_ADDRESS_NOT_GLOBAL),
    "IPv4-mapped AR": (
        {"ar_addresses": ("::ffff:192.0.2.1",)},
        DiscardReason.AR_ADDRESS_NOT_GLOBAL,
    ),
    "two AR addresses": (
        {"ar_addresses": (ra.ipv6_text(AR), ra.ipv6_text(AR))},
        DiscardReason.AR_ADDRESS_NOT_ONE,
    ),
    "no AR address": ({"ar_addresses": ()}, DiscardReason.NO_AR_ADDRESS),
}


def test_every_lenient_spelling_is_discarded_and_counted():
    with module_state() as (module, replay):
        for name, (kwargs, reason) in SPELLINGS.items():
            lists = fresh_request(**kwargs)
            decision = module.decide(lists, HKSPolicy(), replay, module._state["log"])
            assert isinstance(decision, Discard) and decision.reason is reason, name
            rcode, reply = module.reply_for(decision, lambda hk: hk)
            assert rcode == module.RLM_MODULE_REJECT, name
            assert not {ra.STATUS_CODE, ra.RESPONSE_HEADER} & {
                n for n, _, _ in reply.get("reply", ())
            }
        totals = module._state["log"].totals
        assert replay.last_accepted(NAI) is None
        for reason in set(r for _, r in SPELLINGS.values()):
            expected = sum(1 for _, r in SPELLINGS.values() if r is reason)
            assert totals[f"Discard {reason.name} ({reason.value})"] == expected
        # the strict spelling itself still gets its key
        assert isinstance(
            module.decide(fresh_request(), HKSPolicy(), replay, module._state["log"]), Accept
        )


def test_request_from_lists_reads_counts_and_octets():
    request = request_from_lists(fresh_request(user_names=(NAI + b"\0", OTHER)))
    assert (request.user_name, request.user_name_count) == (NAI + b"\0", 2)
    request = request_from_lists(fresh_request(ar_addresses=("not-an-address",)))
    assert (request.ar_address, request.ar_address_count) == (None, 1)


# ---- bounded logging (issue 15) ------------------------------------------------------------


def discard(reason: DiscardReason = DiscardReason.BAD_MAC) -> Discard:
    return Discard(reason)


def test_every_accept_has_its_line_and_the_rest_one_summary_per_interval():
    log = DecisionLog(interval=10.0)
    accept = Accept(bytes(20), bytes(16), 3600, 1, None, nai=NAI)
    reject = Reject(NAI, Status.INVALID_TIMESTAMP, b"", "timestamp stale by 9.0 s")
    first = log.record(discard(), b"junk@x", 100.0)  # after a quiet interval: at once
    assert len(first) == 1 and "BAD_MAC" in first[0].text and ": 1 " in first[0].text
    lines = []
    for i in range(1000):  # junk within the interval: nothing written
        lines += log.record(discard(), f"junk{i}@x".encode(), 100.0 + i * 0.009)
        lines += log.record(reject, NAI, 100.0 + i * 0.009)
    assert lines == []
    accepted = log.record(accept, NAI, 105.0)
    assert [line.text for line in accepted] == ["Accept 'mn@example.net': HK issued, PRF 1"]
    [summary] = log.record(discard(), b"late@x", 110.0)
    assert "BAD_MAC (the MN-HKS MAC does not verify): 1001 (last 'late@x')" in summary.text
    assert "Reject INVALID_TIMESTAMP: 1000 (last 'mn@example.net' (timestamp stale" in summary.text
    assert summary.severity is Severity.INFO
    assert log.record(discard(), b"x", 111.0) == [] and len(log.flush(112.0)) == 1
    assert log.flush(113.0) == []
    assert log.totals["Accept"] == 1 and log.totals["Reject INVALID_TIMESTAMP"] == 1000


def test_a_configuration_fault_is_an_error_line_and_identities_are_cut():
    log = DecisionLog(interval=0.0)
    [line] = log.record(discard(DiscardReason.HMK_TOO_SHORT), b"x" * 200 + b"\n", 1.0)
    assert line.severity is Severity.ERROR and "shorter than 64 octets" in line.text
    assert "x" * 64 + "..." in line.text and "x" * 65 not in line.text and "\n" not in line.text
    [line] = log.record(discard(), None, 1.0)  # interval 0: a line per request
    assert line.severity is Severity.INFO and "(last -)" in line.text
