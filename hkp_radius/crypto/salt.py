"""RFC 2548 §2.4.2 salt encryption (MS-MPPE-Send-Key; FreeRADIUS `encrypt=2`).

The HKS encrypts the HK itself, so the plaintext never leaves its Python module
(docs/decisions.md ## HKS); the AR decrypts. The layout is FreeRADIUS 3.2's
(`make_tunnel_passwd` / `rad_tunnel_pwdecode`, src/lib/radius.c), octet for octet:

    Salt (2 octets, high bit set) | C(1) | C(2) | ...
    P = one length octet | key | zero padding to a multiple of 16 octets
    b(1) = MD5(S + R + Salt)    c(1) = p(1) xor b(1)
    b(i) = MD5(S + c(i-1))      c(i) = p(i) xor b(i)

S is the RADIUS shared secret, R the Request Authenticator of the Access-Request
the reply answers. Pure functions: the salt's randomness is an argument.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Callable

from hkp_radius.errors import FieldValueError, LengthMismatchError, LocalProtocolError

SALT_LENGTH = 2  # RFC 2548 §2.4.2
SALT_HIGH_BIT = 0x80  # RFC 2548 §2.4.2: "The most significant bit (leftmost) ... MUST be set"
BLOCK_LENGTH = 16  # MD5 output; the plaintext is padded to a multiple of it
REQUEST_AUTHENTICATOR_LENGTH = 16  # RFC 2865 §3
# A VSA value holds at most 247 octets (RFC 2865 §5.26): salt (2) + 15 blocks (240)
# leaves room for a length octet and 239 octets of key.
MAX_PLAINTEXT_LENGTH = 239


def new_salt(random_bytes: Callable[[int], bytes]) -> bytes:
    """A salt from two random octets, high bit set. Draw one per encrypted attribute:
    RFC 2548 requires each salt in a packet to be unique."""
    octets = random_bytes(SALT_LENGTH)
    if len(octets) != SALT_LENGTH:
        raise LocalProtocolError("the random source returned the wrong number of octets")
    return bytes((octets[0] | SALT_HIGH_BIT, octets[1]))


def _keystream_xor(
    data: bytes, secret: bytes, request_authenticator: bytes, salt: bytes, decrypt: bool
) -> bytes:
    """XOR `data` (a multiple of 16 octets) with b(1), b(2), ...; each b(i) after the
    first chains on the previous ciphertext block."""
    out = bytearray()
    chain = request_authenticator + salt
    for start in range(0, len(data), BLOCK_LENGTH):
        block = data[start : start + BLOCK_LENGTH]
        pad = hashlib.md5(secret + chain).digest()  # noqa: S324 - RFC 2548 mandates MD5
        # one integer XOR per block, not one per octet (issue 14: the AR's profile)
        mixed = int.from_bytes(block, "big") ^ int.from_bytes(pad, "big")
        result = mixed.to_bytes(BLOCK_LENGTH, "big")
        out += result
        chain = block if decrypt else result
    return bytes(out)


def _check_context(secret: bytes, request_authenticator: bytes) -> None:
    if not secret:
        raise LocalProtocolError("salt encryption needs the RADIUS shared secret")
    if len(request_authenticator) != REQUEST_AUTHENTICATOR_LENGTH:
        raise LocalProtocolError(
            f"a Request Authenticator is {REQUEST_AUTHENTICATOR_LENGTH} octets, "
            f"not {len(request_authenticator)}"
        )


def salt_encrypt(
    plaintext: bytes, secret: bytes, request_authenticator: bytes, salt: bytes
) -> bytes:
    """The attribute value (salt and ciphertext) carrying `plaintext` (1-239 octets).
    Raises LocalProtocolError on misuse; messages never contain key material."""
    _check_context(secret, request_authenticator)
    if len(salt) != SALT_LENGTH or not salt[0] & SALT_HIGH_BIT:
        raise LocalProtocolError("a salt is 2 octets with the high bit set (RFC 2548)")
    if not 1 <= len(plaintext) <= MAX_PLAINTEXT_LENGTH:
        raise LocalProtocolError(
            f"a salt-encrypted value holds 1-{MAX_PLAINTEXT_LENGTH} octets, not {len(plaintext)}"
        )
    padded = bytes((len(plaintext),)) + plaintext
    padded += bytes(-len(padded) % BLOCK_LENGTH)
    return salt + _keystream_xor(padded, secret, request_authenticator, salt, decrypt=False)


def salt_decrypt(value: bytes, secret: bytes, request_authenticator: bytes) -> bytes:
    """The plaintext of a salt-encrypted attribute value. Raises DecodeError
    subclasses for a malformed value (length, salt, length octet, padding)."""
    _check_context(secret, request_authenticator)
    body = value[SALT_LENGTH:]
    if len(body) < BLOCK_LENGTH or len(body) % BLOCK_LENGTH:
        raise LengthMismatchError(
            f"a salt-encrypted value is 2 octets of salt and 16-octet blocks, "
            f"not {len(value)} octets"
        )
    if not value[0] & SALT_HIGH_BIT:
        raise FieldValueError("salt-encrypted value: the salt's high bit is not set")
    plain = _keystream_xor(body, secret, request_authenticator, value[:SALT_LENGTH], True)
    length = plain[0]
    padding = plain[1 + length :]
    # Wrong secret or Request Authenticator: the length octet is garbage, or the
    # padding is not zero (compared in constant time: it is decrypted data).
    if not 1 <= length <= len(plain) - 1 or not hmac.compare_digest(padding, bytes(len(padding))):
        raise FieldValueError(
            "salt-encrypted value: the length octet or the padding is wrong "
            "(wrong secret or Request Authenticator?)"
        )
    return plain[1 : 1 + length]
