"""RFC 2548 §2.4.2 salt encryption (hkp_radius.salt): vectors FreeRADIUS 3.2.1 produced
with encrypt=2, pyrad's implementation both ways, the layout, and every refusal."""

from __future__ import annotations

import hashlib

import pyrad.packet
import pytest

from hkp_radius.constants import HK_MAX_LENGTH
from hkp_radius.crypto import salt
from hkp_radius.errors import DecodeError, LocalProtocolError

# Captured from a private FreeRADIUS 3.2.1 (freeradius_module.instance, the same setup
# as tests/integration/test_freeradius_salt.py): unlang `update reply {
# &HKP-Handover-Key := 0x... }`, encrypted by FreeRADIUS itself (encrypt=2) in the
# Access-Accept to a request with this Request Authenticator.
FR_SECRET = b"hkp-test-secret"
FR_REQUEST_AUTHENTICATOR = bytes.fromhex("0fe5505120cdcd7b71078d08b64c267e")
FR_VECTORS = (
    # 15 octets: length octet + key fill exactly one block
    (
        bytes(range(0xA0, 0xAF)),
        bytes.fromhex("85b2621351c6c4c6bcabf90262a23e88d878"),
    ),
    # 33 octets: three blocks, so b(2) and b(3) chain on the ciphertext
    (
        b"FreeRADIUS encrypt=2 test vector!",
        bytes.fromhex(
            "8ff9485c3c48c3624e6c7d2fffcef12dcd63f7b3ef479e00b19ec3da"
            "60f2031df4b78b39de777a96d27dfb992b60a2fd04c4"
        ),
    ),
)
SECRET = b"s3cret"
AUTHENTICATOR = bytes(range(16))
SALT = b"\x85\x17"
LENGTHS = (1, 14, 15, 16, 20, 31, 32, 33, 64, 238, 239)


def key_of(length: int) -> bytes:
    return (hashlib.sha256(bytes((length,))).digest() * 8)[:length]


@pytest.mark.parametrize(("plaintext", "value"), FR_VECTORS)
def test_freeradius_vectors_both_ways(plaintext: bytes, value: bytes) -> None:
    assert salt.salt_decrypt(value, FR_SECRET, FR_REQUEST_AUTHENTICATOR) == plaintext
    # the same salt gives FreeRADIUS's octets exactly
    assert salt.salt_encrypt(plaintext, FR_SECRET, FR_REQUEST_AUTHENTICATOR, value[:2]) == value


@pytest.mark.parametrize("length", LENGTHS)
def test_layout_and_round_trip(length: int) -> None:
    plaintext = key_of(length)
    value = salt.salt_encrypt(plaintext, SECRET, AUTHENTICATOR, SALT)
    blocks = -(-(length + 1) // 16)  # the length octet and the key, rounded up
    assert value[:2] == SALT
    assert len(value) == 2 + 16 * blocks
    assert len(value) <= 242  # fits a 247-octet VSA value
    assert salt.salt_decrypt(value, SECRET, AUTHENTICATOR) == plaintext
    # P = length | key | zeros; c(1) = p(1) xor MD5(S + R + Salt)
    b1 = hashlib.md5(SECRET + AUTHENTICATOR + SALT).digest()
    p1 = bytes(c ^ b for c, b in zip(value[2:18], b1, strict=True))
    assert p1[0] == length and p1[1 : 1 + length] == plaintext[:15]


@pytest.mark.parametrize("length", LENGTHS)
def test_pyrad_decrypts_ours_and_we_decrypt_pyrads(length: int) -> None:
    plaintext = key_of(length)
    reply = pyrad.packet.Packet(secret=SECRET)
    reply.request_authenticator = AUTHENTICATOR  # a reply: the request's authenticator
    assert reply.SaltDecrypt(salt.salt_encrypt(plaintext, SECRET, AUTHENTICATOR, SALT)) == (
        plaintext
    )
    assert salt.salt_decrypt(reply.SaltCrypt(plaintext), SECRET, AUTHENTICATOR) == plaintext


def test_the_limit_is_the_hk_limit() -> None:
    assert salt.MAX_PLAINTEXT_LENGTH == HK_MAX_LENGTH  # hk_length is validated against it


def test_new_salt_sets_the_high_bit() -> None:
    assert salt.new_salt(lambda n: bytes(n)) == b"\x80\x00"
    assert salt.new_salt(lambda n: b"\xff" * n) == b"\xff\xff"
    assert salt.new_salt(lambda n: b"\x12\x34"[:n]) == b"\x92\x34"
    with pytest.raises(LocalProtocolError):
        salt.new_salt(lambda n: b"\x01")


def test_each_salt_gives_another_ciphertext() -> None:
    key = key_of(20)
    one = salt.salt_encrypt(key, SECRET, AUTHENTICATOR, b"\x80\x01")
    two = salt.salt_encrypt(key, SECRET, AUTHENTICATOR, b"\x80\x02")
    assert one[2:] != two[2:]


@pytest.mark.parametrize(
    ("plaintext", "secret", "authenticator", "salt_value", "match"),
    [
        (b"", SECRET, AUTHENTICATOR, SALT, "1-239"),
        (bytes(240), SECRET, AUTHENTICATOR, SALT, "1-239"),
        (b"k", SECRET, AUTHENTICATOR, b"\x05\x17", "high bit"),
        (b"k", SECRET, AUTHENTICATOR, b"\x85", "2 octets"),
        (b"k", SECRET, bytes(15), SALT, "16 octets"),
        (b"k", b"", AUTHENTICATOR, SALT, "secret"),
    ],
)
def test_encrypt_refuses_misuse(
    plaintext: bytes, secret: bytes, authenticator: bytes, salt_value: bytes, match: str
) -> None:
    with pytest.raises(LocalProtocolError, match=match):
        salt.salt_encrypt(plaintext, secret, authenticator, salt_value)


def test_decrypt_refuses_malformed_values_without_naming_the_key() -> None:
    key = key_of(20)
    good = salt.salt_encrypt(key, SECRET, AUTHENTICATOR, SALT)
    bad = [
        b"",
        SALT,
        good[:-1],  # not whole blocks
        good + b"\x00",
        bytes((good[0] & 0x7F,)) + good[1:],  # salt high bit clear
    ]
    for value in bad:
        with pytest.raises(DecodeError):
            salt.salt_decrypt(value, SECRET, AUTHENTICATOR)
    for secret, authenticator in ((b"other", AUTHENTICATOR), (SECRET, bytes(16))):
        with pytest.raises(DecodeError) as caught:
            salt.salt_decrypt(good, secret, authenticator)
        assert key.hex() not in str(caught.value)
    with pytest.raises(LocalProtocolError):
        salt.salt_decrypt(good, SECRET, bytes(8))


def test_decrypt_refuses_nonzero_padding_and_overlong_length() -> None:
    def forge(plain: bytes) -> bytes:
        """Encrypt an arbitrary padded plaintext (not through salt_encrypt)."""
        out, chain = bytearray(SALT), AUTHENTICATOR + SALT
        for i in range(0, len(plain), 16):
            pad = hashlib.md5(SECRET + chain).digest()
            block = bytes(a ^ b for a, b in zip(plain[i : i + 16], pad, strict=True))
            out += block
            chain = block
        return bytes(out)

    assert salt.salt_decrypt(forge(b"\x02ab" + bytes(13)), SECRET, AUTHENTICATOR) == b"ab"
    for plain in (b"\x02ab" + bytes(12) + b"\x01", b"\x10" + bytes(15), b"\x00" + bytes(15)):
        with pytest.raises(DecodeError):
            salt.salt_decrypt(forge(plain), SECRET, AUTHENTICATOR)
