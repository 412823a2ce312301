"""The HKS role (hkp_radius.hks) without FreeRADIUS: draft §6.4, PROFILE P4, P5, P7, P8.

Plain functions and asserts (tests/core/check.py style): each outcome, the order of
the checks, the replay rules, and the P8 attribute helpers.
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress

from hkp_radius import crypto
from hkp_radius.constants import (
    HIK_LABEL,
    HK_LABEL,
    PRF,
    MacAlgorithm,
    MacSubtype,
    NonceSubtype,
    Status,
)
from hkp_radius.crypto import salt
from hkp_radius.errors import ConfigError, DecodeError, LocalProtocolError
from hkp_radius.hks.role import (
    Accept,
    Discard,
    DiscardReason,
    HKSPolicy,
    HKSRequest,
    MemoryReplayStore,
    Reject,
    handle_request,
    is_global_unicast,
    parse_algorithm,
)
from hkp_radius.wire import ntp
from hkp_radius.wire import radius_attrs as ra
from hkp_radius.wire.messages import HKReq, HKResp, decode_message
from hkp_radius.wire.options import (
    HandoverNonce,
    MacOption,
    MobileNodeIdentifier,
    Option,
    Timestamp,
)
from tests.core.check import raises

NAI = b"mn@example.net"
HMK = bytes(range(64))
AR = bytes.fromhex("20010db8000000000000000000000001")
MN_NONCE = bytes(range(16, 32))
HKS_NONCE = bytes(range(32, 48))
NOW = 1_700_000_000.0
STRICT = HKSPolicy(
    allowed_prfs=frozenset({PRF.HMAC_SHA1}),
    allowed_mac_algorithms=frozenset({MacAlgorithm.HMAC_SHA1}),
    require_timestamp=True,
)


def hkreq(
    *,
    message_id: int = 7,
    prf: int = PRF.HMAC_SHA1,
    algorithm: int = MacAlgorithm.HMAC_SHA1,
    timestamp: int | None = None,
    mac: bool = True,
    key: bytes | None = None,
    nai: bytes = NAI,
    hmk: bytes = HMK,
) -> bytes:
    options: list[Option] = [
        MobileNodeIdentifier(nai),
        HandoverNonce(NonceSubtype.MN_NONCE, MN_NONCE),
    ]
    if timestamp is not None:
        options.append(Timestamp(timestamp))
    unknown_algorithm = algorithm not in (MacAlgorithm.HMAC_SHA1, MacAlgorithm.HMAC_SHA256)
    if mac:  # an algorithm we cannot sign with gets a made-up AUTH
        options.append(
            MacOption(MacSubtype.MN_HKS, algorithm, bytes(20) if unknown_algorithm else b"")
        )
    message = HKReq(message_id, False, prf, bytes(16), tuple(options))
    if not mac or unknown_algorithm:
        return message.encode()
    hik = key if key is not None else crypto.derive_hik(hmk, prf, message_id, algorithm)
    return crypto.sign_message(message, {MacSubtype.MN_HKS: hik})


def decide(
    wire: bytes | None,
    policy: HKSPolicy = STRICT,
    replay: MemoryReplayStore | None = None,
    now: float = NOW,
    **fields: object,
):
    request = HKSRequest(
        **{"user_name": NAI, "mobility_header": wire, "ar_address": AR, "hmk": HMK, **fields}
    )  # type: ignore[arg-type]
    return handle_request(
        request, policy, replay or MemoryReplayStore(), now, lambda n: HKS_NONCE[:n]
    )


def ts(offset: float = 0.0) -> int:
    return ntp.to_ntp(NOW + offset)


def error_response(
    decision: object,
    status: Status,
    key_algorithm: int = MacAlgorithm.HMAC_SHA1,
    message_id: int = 7,
) -> HKResp:
    assert isinstance(decision, Reject), decision
    assert decision.status == status
    response = decode_message(decision.response_header)
    assert isinstance(response, HKResp)
    assert (response.status, response.message_id, response.spi, response.lifetime) == (
        status,
        message_id,
        0,
        0,
    )
    mac = response.mac(MacSubtype.MN_HKS)
    assert mac is not None and mac.algorithm == key_algorithm
    hik = crypto.derive_hik(HMK, PRF.HMAC_SHA1, message_id, key_algorithm)
    assert crypto.verify_mac(decision.response_header, response, MacSubtype.MN_HKS, hik)
    return response


def test_accept_derives_the_profile_hk():
    decision = decide(hkreq(timestamp=ts()))
    assert isinstance(decision, Accept)
    assert decision.handover_key == crypto.derive_hk(
        HMK, PRF.HMAC_SHA1, MN_NONCE, HKS_NONCE, NAI, AR
    )
    assert (decision.hks_nonce, decision.lifetime, decision.prf, decision.timestamp) == (
        HKS_NONCE,
        3600,
        PRF.HMAC_SHA1,
        ts(),
    )
    assert HMK.hex() not in repr(decision) and decision.handover_key.hex() not in repr(decision)


def test_timestamps_are_required_by_default():
    """Issue 16: without timestamps a recorded HKReq is replayed forever."""
    assert HKSPolicy().require_timestamp
    error_response(decide(hkreq(), policy=HKSPolicy()), Status.TIMESTAMP_REQD)


def test_accept_without_timestamp_when_not_required():
    policy = HKSPolicy(hk_length=32, key_lifetime=60, require_timestamp=False)
    decision = decide(hkreq(), policy=policy)
    assert isinstance(decision, Accept) and decision.timestamp is None
    assert len(decision.handover_key) == 32 and decision.lifetime == 60


def test_discards():
    cases = {
        DiscardReason.BAD_MAC: decide(hkreq(timestamp=ts(), key=bytes(20))),
        DiscardReason.NO_MN_HKS_MAC: decide(hkreq(timestamp=ts(), mac=False)),
        DiscardReason.UNKNOWN_NAI: decide(hkreq(timestamp=ts()), hmk=None),
        DiscardReason.HMK_TOO_SHORT: decide(hkreq(timestamp=ts()), hmk=HMK[:63]),
        DiscardReason.MALFORMED: decide(b"\x3b\x01garbage"),
        DiscardReason.NO_MOBILITY_HEADER: decide(None),
        DiscardReason.NO_AR_ADDRESS: decide(hkreq(timestamp=ts()), ar_address=None),
        DiscardReason.USER_NAME_MISMATCH: decide(
            hkreq(timestamp=ts()), user_name=b"other@example.net"
        ),
        DiscardReason.UNSUPPORTED_PRF: decide(hkreq(timestamp=ts(), prf=5, key=bytes(20))),
        DiscardReason.UNSUPPORTED_MAC_ALGORITHM: decide(
            hkreq(timestamp=ts(), algorithm=9, key=bytes(20))
        ),
    }
    for reason, decision in cases.items():
        assert isinstance(decision, Discard) and decision.reason is reason, (reason, decision)
    assert cases[DiscardReason.NO_AR_ADDRESS].ar_error
    assert not cases[DiscardReason.BAD_MAC].ar_error


def test_invalid_prf_alg_names_the_required_prf():
    decision = decide(hkreq(timestamp=ts(), prf=PRF.HMAC_SHA256))
    assert isinstance(decision, Reject) and decision.status == Status.INVALID_PRF_ALG
    response = decode_message(decision.response_header)
    assert response.prf == PRF.HMAC_SHA1
    hik = crypto.derive_hik(
        HMK, PRF.HMAC_SHA256, 7, MacAlgorithm.HMAC_SHA1
    )  # the HIK of the request
    assert crypto.verify_mac(decision.response_header, response, MacSubtype.MN_HKS, hik)


def test_invalid_mac_alg_is_signed_with_the_required_algorithm():
    decision = decide(hkreq(timestamp=ts(), algorithm=MacAlgorithm.HMAC_SHA256))
    error_response(decision, Status.INVALID_MAC_ALG, key_algorithm=MacAlgorithm.HMAC_SHA1)


def test_unknown_mac_algorithm_is_discarded_not_answered():
    """R91 (SHOULD INVALID_MAC_ALG) departs here, as PROFILE P7 says: a MAC of an
    algorithm we do not implement cannot be verified, and a signed error to an
    unauthenticated request would be an oracle (docs/decisions.md). Unknown values,
    not merely disallowed ones, and even when the policy would allow every known one."""
    for algorithm in (0, 3, 9, 15):
        for policy in (STRICT, HKSPolicy()):
            decision = decide(hkreq(timestamp=ts(), algorithm=algorithm), policy=policy)
            assert isinstance(decision, Discard), (algorithm, decision)
            assert decision.reason is DiscardReason.UNSUPPORTED_MAC_ALGORITHM
            assert not decision.ar_error


def test_one_hks_answer_type_checked_in_one_place():
    """Issue 8: the HKS's Accept is an HKSGrant, and the checks that an Access-Accept
    read back by the AR must pass are HKSGrant's own: the same for both sides."""
    good = {"handover_key": bytes(20), "hks_nonce": bytes(16), "lifetime": 60, "prf": 1}
    accept = decide(hkreq(timestamp=ts()))
    assert isinstance(accept, ra.HKSGrant) and accept.nai == NAI
    names = {
        "handover_key": ra.HANDOVER_KEY,
        "hks_nonce": ra.HKS_NONCE,
        "lifetime": ra.KEY_LIFETIME,
        "prf": ra.PRF_ATTRIBUTE,
        "timestamp": ra.TIMESTAMP,
    }
    for bad, match in [
        ({"handover_key": b""}, ra.HANDOVER_KEY),
        ({"handover_key": bytes(240)}, ra.HANDOVER_KEY),
        ({"hks_nonce": bytes(15)}, ra.HKS_NONCE),
        ({"hks_nonce": bytes(65)}, ra.HKS_NONCE),
        ({"lifetime": 0}, ra.KEY_LIFETIME),
        ({"lifetime": 65536}, ra.KEY_LIFETIME),
        ({"prf": 8}, ra.PRF_ATTRIBUTE),
    ]:
        fields = {**good, **bad}
        with raises(LocalProtocolError, match):
            ra.HKSGrant(**fields)  # type: ignore[arg-type]
        with raises(LocalProtocolError, match):
            Accept(**fields, nai=NAI)  # type: ignore[arg-type]
        wire = {names[k]: [v] for k, v in fields.items()}
        with raises(DecodeError, match):  # the AR's side: a decode error, same check
            ra.parse_accept(wire)  # type: ignore[arg-type]
    with raises(LocalProtocolError, ra.TIMESTAMP):
        ra.HKSGrant(**good, timestamp=1 << 64)  # type: ignore[arg-type]


def test_global_unicast_ar_addresses():
    for text in ("2001:db8::1", "2a00:1450::1", "fd00::1", "64:ff9b::c000:201"):
        assert is_global_unicast(ipaddress.IPv6Address(text).packed), text
    for text in ("::", "::1", "::192.0.2.1", "::ffff:192.0.2.1", "ff02::1", "ff0e::1",
                 "fe80::1", "febf::1", "fec0::1"):  # fmt: skip
        assert not is_global_unicast(ipaddress.IPv6Address(text).packed), text
        decision = decide(hkreq(timestamp=ts()), ar_address=ipaddress.IPv6Address(text).packed)
        assert isinstance(decision, Discard) and decision.ar_error
        assert decision.reason is DiscardReason.AR_ADDRESS_NOT_GLOBAL


def test_timestamp_required():
    response = error_response(decide(hkreq()), Status.TIMESTAMP_REQD)
    assert response.timestamp is None


def test_invalid_timestamp_carries_our_seconds_and_their_fraction():
    for offset in (-8.0, +8.0):
        sent = ts(offset) | 0x1234
        response = error_response(decide(hkreq(timestamp=sent)), Status.INVALID_TIMESTAMP)
        assert response.timestamp == ntp.replace_seconds(sent, ntp.to_ntp(NOW))
    assert isinstance(decide(hkreq(timestamp=ts(6.9))), Accept)  # inside ±7 s


def test_replay_is_refused_and_only_accepts_advance_the_state():
    replay = MemoryReplayStore()
    assert isinstance(decide(hkreq(timestamp=ts()), replay=replay), Accept)
    error_response(decide(hkreq(timestamp=ts()), replay=replay), Status.INVALID_TIMESTAMP)
    error_response(decide(hkreq(timestamp=ts(-1)), replay=replay), Status.INVALID_TIMESTAMP)
    # a prohibited request with a later timestamp does not move the state
    error_response(
        decide(hkreq(timestamp=ts(2)), replay=replay, authorized=False),
        Status.ADMINISTRATIVELY_PROHIBITED,
    )
    assert replay.last_accepted(NAI) == ts()
    assert isinstance(decide(hkreq(timestamp=ts(1)), replay=replay), Accept)


def test_lost_race_is_invalid_timestamp():
    class Racing(MemoryReplayStore):
        def record_if_newer(self, nai: bytes, timestamp: int) -> bool:
            return False

    error_response(decide(hkreq(timestamp=ts()), replay=Racing()), Status.INVALID_TIMESTAMP)


def test_order_authentication_before_policy():
    # a disallowed PRF with a bad MAC is discarded, not answered
    assert isinstance(decide(hkreq(timestamp=ts(), prf=PRF.HMAC_SHA256, key=bytes(20))), Discard)
    # PRF before MAC algorithm before timestamp before authorization
    both = decide(hkreq(prf=PRF.HMAC_SHA256, algorithm=MacAlgorithm.HMAC_SHA256), authorized=False)
    assert isinstance(both, Reject) and both.status == Status.INVALID_PRF_ALG
    no_ts = decide(hkreq(), authorized=False)
    assert isinstance(no_ts, Reject) and no_ts.status == Status.TIMESTAMP_REQD


def test_policy_validation():
    with raises(ConfigError, "required_prf"):
        HKSPolicy(allowed_prfs=frozenset({PRF.HMAC_SHA256}))
    with raises(ConfigError, "key_lifetime"):
        HKSPolicy(key_lifetime=70000)
    with raises(ConfigError, "hk_length"):
        HKSPolicy(hk_length=240)


def test_non_ascii_digits_are_refused_with_the_project_errors():
    """A "²" passes str.isdigit() but int() refuses it: it used to escape as ValueError."""
    assert parse_algorithm(" 2 ", MacAlgorithm) == MacAlgorithm.HMAC_SHA256
    with raises(ConfigError, "MacAlgorithm"):
        parse_algorithm("²", MacAlgorithm)
    with raises(DecodeError, ra.KEY_LIFETIME):
        ra.parse_accept(
            {
                ra.HANDOVER_KEY: [b"k" * 20],
                ra.HKS_NONCE: [HKS_NONCE],
                ra.KEY_LIFETIME: ["²"],
                ra.PRF_ATTRIBUTE: [1],
            }
        )
    with raises(DecodeError, ra.STATUS_CODE):
        ra.parse_reject({ra.STATUS_CODE: ["²"], ra.RESPONSE_HEADER: [b"\x01"]})


def test_radius_attrs_split_and_join():
    mh = bytes(range(256)) * 2
    chunks = ra.split_mobility_header(mh)
    assert [len(c) for c in chunks] == [247, 247, 18]
    assert ra.join_mobility_header(chunks) == mh
    with raises(LocalProtocolError):  # encode side: our misuse, not a peer's bytes
        ra.split_mobility_header(b"")


def test_radius_attrs_hex_and_addresses():
    assert ra.to_hex(b"\x00\xff") == "0x00ff" and ra.from_hex("0x00FF") == b"\x00\xff"
    for bad in ("00ff", "0xzz", "0x0"):
        with raises(DecodeError):
            ra.from_hex(bad)
    assert ra.ipv6_octets("2001:db8::1") == AR and ra.ipv6_text(AR) == "2001:db8::1"
    with raises(DecodeError):
        ra.ipv6_octets("1.2.3.4")
    with raises(LocalProtocolError, "16 octets"):
        ra.ipv6_text(AR[:4])
    with raises(LocalProtocolError, "UTF-8"):
        ra.access_request_attributes(b"x", b"\xff@example.net", AR, bytes(16))


def test_radius_attrs_request_and_replies():
    attrs = ra.access_request_attributes(b"x" * 300, NAI, AR, bytes(16), nas_identifier="ar1")
    names = [n for n, _ in attrs]
    assert names == [
        ra.USER_NAME,
        ra.MOBILITY_HEADER,
        ra.MOBILITY_HEADER,
        ra.AR_ADDRESS,
        ra.CARE_OF_ADDRESS,
        ra.NAS_IDENTIFIER,
    ]
    grant = ra.parse_accept(
        {
            ra.HANDOVER_KEY: [b"k" * 20],
            ra.HKS_NONCE: [HKS_NONCE],
            ra.KEY_LIFETIME: [3600],
            ra.PRF_ATTRIBUTE: ["HMAC-SHA1"],
            ra.TIMESTAMP: [(5).to_bytes(8, "big")],
        }
    )
    assert (grant.prf, grant.lifetime, grant.timestamp) == (1, 3600, 5)
    with raises(DecodeError, ra.HKS_NONCE):
        ra.parse_accept({ra.HANDOVER_KEY: [b"k"]})
    refusal = ra.parse_reject(
        {ra.STATUS_CODE: ["Invalid-Timestamp"], ra.RESPONSE_HEADER: [b"\x01"]}
    )
    assert refusal.status == Status.INVALID_TIMESTAMP and refusal.response_header == b"\x01"
    assert ra.parse_reject({ra.REPLY_MESSAGE: ["why"]}) == ra.HKSRefusal(None, None, "why")
    with raises(DecodeError):
        ra.parse_reject({ra.STATUS_CODE: [138]})


class KeyUse:
    """Records every HMAC the crypto functions compute and every MD5 the salt
    encryption computes, with the key and the data (tests only: keys stay here)."""

    def __init__(self) -> None:
        self.hmacs: list[tuple[bytes, bytes]] = []
        self.md5_inputs: list[bytes] = []
        recorder = self

        class RecordingHmac:
            compare_digest = staticmethod(hmac.compare_digest)

            @staticmethod
            def new(key: bytes, msg: bytes, digestmod: object) -> object:
                recorder.hmacs.append((bytes(key), bytes(msg)))
                return hmac.new(key, msg, digestmod)  # type: ignore[arg-type]

            @staticmethod
            def digest(key: bytes, msg: bytes, digest: object) -> bytes:
                recorder.hmacs.append((bytes(key), bytes(msg)))
                return hmac.digest(key, msg, digest)  # type: ignore[arg-type]

        class RecordingHashlib:
            @staticmethod
            def md5(data: bytes) -> object:
                recorder.md5_inputs.append(bytes(data))
                return hashlib.md5(data)

        self.hmac = RecordingHmac
        self.hashlib = RecordingHashlib

    def direct_uses_of(self, hmk: bytes) -> list[str]:
        """Every use of the HMK (whole, or any part of 16 or more octets) other than as
        the key of gprf+ deriving the HIK or the HK (P4): data that ends with one of
        the two labels and the one-octet Y."""
        found = []
        for key, data in self.hmacs:
            if key == hmk or (len(key) >= 16 and key in hmk):
                if data[:-1].endswith(HIK_LABEL) or data[:-1].endswith(HK_LABEL):
                    continue
                found.append(f"HMAC keyed with the HMK over {len(data)} octets")
            elif hmk[:16] in data:
                found.append("the HMK inside HMAC data")
        found += ["the HMK in MD5 input" for data in self.md5_inputs if hmk[:16] in data]
        return found


def test_hmk_keys_nothing_but_the_derivation_of_hik_and_hk(monkeypatch):
    """R12, draft §6.1: "The HMK MUST NOT be directly used to protect any data." Every
    MAC and the HK's encryption in real decisions (an Accept sealed for the AR, every
    signed error) are recorded: the HMK keys gprf+ only, each MAC the HKS made verifies
    with the HIK and not with the HMK, and the sealed HK opens only with the RADIUS
    secret. The recorder itself catches a message signed with the HMK."""
    from hkp_radius.crypto import primitives

    use = KeyUse()
    monkeypatch.setattr(primitives, "hmac", use.hmac)
    monkeypatch.setattr(salt, "hashlib", use.hashlib)
    replay = MemoryReplayStore()
    accept = decide(hkreq(timestamp=ts()), replay=replay)
    assert isinstance(accept, Accept)
    assert accept.handover_key not in HMK and HMK[:16] not in accept.handover_key
    secret, authenticator = b"radius-secret", bytes(16)
    sealed = salt.salt_encrypt(accept.handover_key, secret, authenticator, b"\x80\x01")
    assert salt.salt_decrypt(sealed, secret, authenticator) == accept.handover_key
    sealing = len(use.md5_inputs)
    with raises(DecodeError):  # our probe: the HMK does not open it
        salt.salt_decrypt(sealed, HMK, authenticator)
    del use.md5_inputs[sealing:]
    errors = [
        decide(hkreq(timestamp=ts(1), prf=PRF.HMAC_SHA256)),
        decide(hkreq(timestamp=ts(1), algorithm=MacAlgorithm.HMAC_SHA256)),
        decide(hkreq()),
        decide(hkreq(timestamp=ts()), replay=replay),
        decide(hkreq(timestamp=ts(2)), authorized=False),
    ]
    statuses = [e.status for e in errors if isinstance(e, Reject)]
    assert len(statuses) == 5 and len(set(statuses)) == 5
    assert use.hmacs and use.direct_uses_of(HMK) == []
    for error in errors:
        assert isinstance(error, Reject)
        response = decode_message(error.response_header)
        mac = response.mac(MacSubtype.MN_HKS)
        assert mac is not None
        for direct in (HMK, HMK[:20], HMK[:32]):
            assert not crypto.verify_mac(error.response_header, response, MacSubtype.MN_HKS, direct)
    # a request MAC'd with the HMK instead of the HIK is not authentic
    for key in (HMK, HMK[:20]):
        forged = decide(hkreq(timestamp=ts(3), key=key))
        assert isinstance(forged, Discard) and forged.reason is DiscardReason.BAD_MAC
    # the recorder sees a direct use: this test fails if the HKS ever signs with the HMK
    use.hmacs.clear()
    crypto.sign_message(
        HKResp(7, False, PRF.HMAC_SHA1, Status.TIMESTAMP_REQD, 0, 0, (MacOption(1, 1),)),
        {MacSubtype.MN_HKS: HMK[:20]},
    )
    assert use.direct_uses_of(HMK) == ["HMAC keyed with the HMK over 20 octets"]
