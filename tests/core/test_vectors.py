"""The codec and crypto against vectors written by hand from the profile (tests/vectors):
exact bytes in both directions (issue 2 points 1, 3 and 4)."""

from __future__ import annotations

import ipaddress

from hkp_radius import crypto
from hkp_radius.constants import MacSubtype, NonceSubtype
from hkp_radius.errors import DecodeError
from hkp_radius.wire.messages import HKReq, HKResp, decode_message
from hkp_radius.wire.options import (
    HandoverNonce,
    MacOption,
    MobileNodeIdentifier,
    Option,
    Timestamp,
    UnknownOption,
)
from tests.vectorfile import Vector, load_vectors

from .check import raises


def _address(vector: Vector, key: str) -> bytes:
    return ipaddress.IPv6Address(vector.fields[key]).packed


def _options(vector: Vector) -> tuple[Option, ...]:
    """The vector's options from its metadata, in the order the vectors use:
    MN-ID, unknown option, MN-Nonce, HKS-Nonce, Timestamp, MN-HKS MAC, MN-AR MAC."""
    f = vector.fields
    options: list[Option] = []
    if "nai" in f and vector.kind == "hkreq":
        options.append(MobileNodeIdentifier(f["nai"].encode()))
    if "unknown_option_type" in f:
        options.append(
            UnknownOption(vector.integer("unknown_option_type"), vector.hex("unknown_option_data"))
        )
    if "mn_nonce" in f and vector.kind == "hkreq":
        options.append(HandoverNonce(NonceSubtype.MN_NONCE, vector.hex("mn_nonce")))
    if "hks_nonce" in f:
        options.append(HandoverNonce(NonceSubtype.HKS_NONCE, vector.hex("hks_nonce")))
    if "timestamp" in f:
        options.append(Timestamp(int(f["timestamp"], 16)))
    if "hik" in f:
        options.append(MacOption(MacSubtype.MN_HKS, vector.integer("mac_at")))
    if "hk" in f:
        options.append(MacOption(MacSubtype.MN_AR, vector.integer("mac_at")))
    return tuple(options)


def _keys(vector: Vector) -> dict[MacSubtype, bytes]:
    keys = {}
    if "hik" in vector.fields:
        keys[MacSubtype.MN_HKS] = vector.hex("hik")
    if "hk" in vector.fields:
        keys[MacSubtype.MN_AR] = vector.hex("hk")
    return keys


def _built(vector: Vector) -> HKReq | HKResp:
    common = (vector.integer("message_id"), bool(vector.integer("verify")), vector.integer("prf"))
    if vector.kind == "hkreq":
        return HKReq(*common, _address(vector, "coa"), _options(vector))
    return HKResp(
        *common,
        vector.integer("status"),
        vector.integer("lifetime"),
        vector.integer("spi"),
        _options(vector),
    )


def test_message_vectors_encode_to_exact_bytes() -> None:
    vectors = load_vectors("hkreq") + load_vectors("hkresp")
    assert len(vectors) >= 10
    for vector in vectors:
        wire = crypto.sign_message(_built(vector), _keys(vector))
        assert wire == vector.data, vector.name


def test_message_vectors_decode_to_their_fields_and_macs_verify() -> None:
    for vector in load_vectors("hkreq") + load_vectors("hkresp"):
        message = decode_message(vector.data)
        stripped = [
            o if not isinstance(o, MacOption) else MacOption(o.subtype, o.algorithm)
            for o in message.options
        ]
        assert tuple(stripped) == _options(vector), vector.name
        signed = decode_message(crypto.sign_message(_built(vector), _keys(vector)))
        assert message == signed, vector.name
        assert message.encode() == vector.data, vector.name
        for subtype, key in _keys(vector).items():
            assert crypto.verify_mac(vector.data, message, subtype, key), vector.name
            assert not crypto.verify_mac(vector.data, message, subtype, bytes(len(key)))


def test_key_derivation_vectors() -> None:
    for vector in load_vectors("gprf"):
        output = crypto.gprf_plus(
            vector.integer("prf"),
            vector.hex("key"),
            vector.hex("seed"),
            vector.integer("y"),
            vector.integer("length"),
        )
        assert output == vector.data, vector.name
    for vector in load_vectors("hik"):
        hik = crypto.derive_hik(
            vector.hex("hmk"),
            vector.integer("prf"),
            vector.integer("message_id"),
            vector.integer("mac_at"),
        )
        assert hik == vector.data, vector.name
    for vector in load_vectors("hk"):
        hk = crypto.derive_hk(
            vector.hex("hmk"),
            vector.integer("prf"),
            vector.hex("mn_nonce"),
            vector.hex("hks_nonce"),
            vector.fields["nai"].encode(),
            _address(vector, "ar_id"),
            vector.integer("length"),
        )
        assert hk == vector.data, vector.name
    assert len(load_vectors("gprf") + load_vectors("hik") + load_vectors("hk")) >= 9


def test_hk_of_the_success_response_is_derived_from_its_inputs() -> None:
    (vector,) = [v for v in load_vectors("hkresp") if v.name == "hkresp_success"]
    hk = crypto.derive_hk(
        vector.hex("hmk"),
        vector.integer("prf"),
        vector.hex("mn_nonce"),
        vector.hex("hks_nonce"),
        vector.fields["nai"].encode(),
        _address(vector, "ar_id"),
    )
    assert hk == vector.hex("hk")


def test_malformed_vectors_raise_decode_errors() -> None:
    vectors = load_vectors("malformed")
    assert len(vectors) >= 10
    for vector in vectors:
        with raises(DecodeError) as caught:
            decode_message(vector.data)
        assert str(caught.value), vector.name
