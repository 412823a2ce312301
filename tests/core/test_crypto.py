"""Key derivation and MACs: draft §6.1, PROFILE P3/P4 (issue 2 points 3 and 4)."""

from __future__ import annotations

import hashlib
import hmac

import hkp_radius.crypto.primitives as crypto
from hkp_radius.constants import PRF, MacAlgorithm, MacSubtype, NonceSubtype
from hkp_radius.errors import HMKTooShortError
from hkp_radius.wire.messages import HKReq, decode_message
from hkp_radius.wire.options import HandoverNonce, MacOption, MobileNodeIdentifier, Timestamp

from .check import raises

# NIST CAVS IKEv2 KDF prf+ vector, HMAC-SHA1 (as in Mozilla NSS ike-sha1-vectors.h).
CAVS_K = bytes.fromhex("a9a7b222b59f8f48645f28a1db5b5f5d7479cba7")
CAVS_S = bytes.fromhex("32b50d5f4a3763f39206a04b26564cb134c9e7c1888687853ff77d760d2b2199")
CAVS_OUT = bytes.fromhex(
    "a14293677cc80ff8f9cc0eee30d895da9d8f405666e30ef0dfcb63c634a46002a2a63080e514a062768b7660"
    "6f9fa5e992204fc5a670bde3f10d6b027113936a5c55b648a194ae587b0088d52204b702c979fa280870d2ed"
    "41efa9c549fd11198af1670b143d384bd275c5f594cf266b05ebadca855e4249520a441a81157435a7a56cc4"
)
HMK = bytes(range(64))
AR_ID = bytes.fromhex("20010db8000000000000000000000001")


def test_gprf_plus_with_y_1_is_ikev2_prf_plus_cavs_vector() -> None:
    assert crypto.gprf_plus(PRF.HMAC_SHA1, CAVS_K, CAVS_S, 1, 132) == CAVS_OUT


def test_gprf_plus_prefixes_are_consistent() -> None:
    # "keys are taken from the output string without regard to boundaries" (§6.1)
    for length in (1, 19, 20, 21, 40, 41, 131):
        assert crypto.gprf_plus(PRF.HMAC_SHA1, CAVS_K, CAVS_S, 1, length) == CAVS_OUT[:length]


def _reference_gprf(digest: str, key: bytes, seed: bytes, y: int, length: int) -> bytes:
    # Written from P4 alone, independent of the implementation's loop.
    out, block, n = b"", b"", 0
    while len(out) < length:
        block = hmac.new(key, block + seed + bytes(((y + n) % 256,)), digest).digest()
        out, n = out + block, n + 1
    return out[:length]


def test_hik_per_p4_for_both_prfs_and_y_wraps() -> None:
    for prf, digest in ((PRF.HMAC_SHA1, "sha1"), (PRF.HMAC_SHA256, "sha256")):
        for algorithm, length in ((MacAlgorithm.HMAC_SHA1, 20), (MacAlgorithm.HMAC_SHA256, 32)):
            for message_id in (0, 7, 255):
                hik = crypto.derive_hik(HMK, prf, message_id, algorithm)
                expected = _reference_gprf(
                    digest, HMK, b"Handover Integrity Key", message_id, length
                )
                assert hik == expected
    # Message ID 255 with SHA-1 and a 32-octet HIK takes two blocks: Y = 255, then 0.
    t1 = hmac.new(HMK, b"Handover Integrity Key\xff", hashlib.sha1).digest()
    t2 = hmac.new(HMK, t1 + b"Handover Integrity Key\x00", hashlib.sha1).digest()
    assert crypto.derive_hik(HMK, PRF.HMAC_SHA1, 255, MacAlgorithm.HMAC_SHA256) == (t1 + t2)[:32]


def test_hk_per_p4_inputs_in_section_6_1_2_order() -> None:
    mn_nonce, hks_nonce, nai = bytes(range(16)), bytes(range(16, 32)), b"alice@example.net"
    for prf, digest in ((PRF.HMAC_SHA1, "sha1"), (PRF.HMAC_SHA256, "sha256")):
        hk = crypto.derive_hk(HMK, prf, mn_nonce, hks_nonce, nai, AR_ID)
        seed = mn_nonce + hks_nonce + nai + AR_ID + b"Handover Key"
        assert hk == _reference_gprf(digest, HMK, seed, 0, 20)
        assert len(crypto.derive_hk(HMK, prf, mn_nonce, hks_nonce, nai, AR_ID, 64)) == 64
    # The §4 overview order is not followed: swapping the nonces changes the key.
    assert crypto.derive_hk(
        HMK, PRF.HMAC_SHA1, hks_nonce, mn_nonce, nai, AR_ID
    ) != crypto.derive_hk(HMK, PRF.HMAC_SHA1, mn_nonce, hks_nonce, nai, AR_ID)


def test_hmk_shorter_than_64_octets_is_refused_without_revealing_it() -> None:
    short = bytes.fromhex("ab" * 63)
    with raises(HMKTooShortError, match="at least 64") as caught:
        crypto.derive_hik(short, PRF.HMAC_SHA1, 1, MacAlgorithm.HMAC_SHA1)
    assert "ab" * 4 not in str(caught.value)
    with raises(HMKTooShortError):
        crypto.derive_hk(short, PRF.HMAC_SHA1, bytes(16), bytes(16), b"a", AR_ID)
    assert crypto.derive_hik(bytes(64), PRF.HMAC_SHA1, 1, MacAlgorithm.HMAC_SHA1)


def test_unsupported_prf_and_mac_algorithm_raise_protocol_errors() -> None:
    with raises(crypto.UnsupportedAlgorithmError, match="PRF 5"):
        crypto.derive_hik(HMK, 5, 1, MacAlgorithm.HMAC_SHA1)
    with raises(crypto.UnsupportedAlgorithmError, match="Algorithm Type 9"):
        crypto.derive_hik(HMK, PRF.HMAC_SHA1, 1, 9)


def _request(*macs: MacOption, verify: bool = False) -> HKReq:
    return HKReq(
        message_id=7,
        verify=verify,
        prf=PRF.HMAC_SHA1,
        care_of_address=bytes.fromhex("20010db8000000000000000000000100"),
        options=(
            MobileNodeIdentifier(b"alice@example.net"),
            HandoverNonce(NonceSubtype.MN_NONCE, bytes(range(16))),
            Timestamp(0xE9C1A0B212345678),
            *macs,
        ),
    )


def test_mac_covers_message_up_to_at_octet_with_zero_checksum() -> None:
    hik = crypto.derive_hik(HMK, PRF.HMAC_SHA1, 7, MacAlgorithm.HMAC_SHA1)
    wire = crypto.sign_message(
        _request(MacOption(MacSubtype.MN_HKS, MacAlgorithm.HMAC_SHA1)), {MacSubtype.MN_HKS: hik}
    )
    message = decode_message(wire)
    mac = message.mac(MacSubtype.MN_HKS)
    assert mac is not None and mac.offset == len(wire) - 24
    assert wire[mac.offset : mac.offset + 4] == bytes((251, 22, 1, 1))
    assert mac.auth == hmac.new(hik, wire[: mac.offset + 4], hashlib.sha1).digest()
    assert crypto.verify_mac(wire, message, MacSubtype.MN_HKS, hik)
    # The checksum is not covered (P3): a kernel-filled checksum still verifies.
    with_sum = wire[:4] + b"\xbe\xef" + wire[6:]
    assert crypto.verify_mac(with_sum, decode_message(with_sum), MacSubtype.MN_HKS, hik)


def test_both_mac_options_second_covers_the_first() -> None:
    hik = crypto.derive_hik(HMK, PRF.HMAC_SHA1, 7, MacAlgorithm.HMAC_SHA1)
    hk = bytes(range(100, 120))
    request = _request(
        MacOption(MacSubtype.MN_HKS, MacAlgorithm.HMAC_SHA1),
        MacOption(MacSubtype.MN_AR, MacAlgorithm.HMAC_SHA256),
        verify=True,
    )
    wire = crypto.sign_message(request, {MacSubtype.MN_HKS: hik, MacSubtype.MN_AR: hk})
    message = decode_message(wire)
    ar_mac = message.mac(MacSubtype.MN_AR)
    assert ar_mac is not None and ar_mac.offset == len(wire) - 36
    assert ar_mac.auth == hmac.new(hk, wire[: ar_mac.offset + 4], hashlib.sha256).digest()
    assert crypto.verify_mac(wire, message, MacSubtype.MN_HKS, hik)
    assert crypto.verify_mac(wire, message, MacSubtype.MN_AR, hk)
    # Flipping any covered octet (outside the checksum) breaks the MN-AR MAC.
    for index in range(ar_mac.offset + 4):
        if index in (4, 5):
            continue
        tampered = bytearray(wire)
        tampered[index] ^= 0x01
        try:
            decoded = decode_message(bytes(tampered))
        except Exception:  # the flip made it malformed: also a rejection
            continue
        assert not crypto.verify_mac(bytes(tampered), decoded, MacSubtype.MN_AR, hk)


def test_wrong_key_absent_option_and_unknown_algorithm_do_not_verify() -> None:
    hik = crypto.derive_hik(HMK, PRF.HMAC_SHA1, 7, MacAlgorithm.HMAC_SHA1)
    wire = crypto.sign_message(
        _request(MacOption(MacSubtype.MN_HKS, MacAlgorithm.HMAC_SHA1)), {MacSubtype.MN_HKS: hik}
    )
    message = decode_message(wire)
    assert not crypto.verify_mac(wire, message, MacSubtype.MN_HKS, bytes(20))
    assert not crypto.verify_mac(wire, message, MacSubtype.MN_AR, hik)
    odd = _request(MacOption(MacSubtype.MN_HKS, 9, bytes(20))).encode()
    assert not crypto.verify_mac(odd, decode_message(odd), MacSubtype.MN_HKS, hik)


def test_mac_comparison_is_constant_time() -> None:
    hik = crypto.derive_hik(HMK, PRF.HMAC_SHA1, 7, MacAlgorithm.HMAC_SHA1)
    wire = crypto.sign_message(
        _request(MacOption(MacSubtype.MN_HKS, MacAlgorithm.HMAC_SHA1)), {MacSubtype.MN_HKS: hik}
    )
    calls: list[tuple[bytes, bytes]] = []
    original = crypto.hmac.compare_digest

    def recording(a: bytes, b: bytes) -> bool:
        calls.append((a, b))
        return original(a, b)

    crypto.hmac.compare_digest = recording  # type: ignore[assignment]
    try:
        assert crypto.verify_mac(wire, decode_message(wire), MacSubtype.MN_HKS, hik)
    finally:
        crypto.hmac.compare_digest = original
    assert len(calls) == 1
