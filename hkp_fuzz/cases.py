"""The seeded case generator. A case is (seed, index): `generate` draws everything, the
MN nonce, the Message ID, the Request Authenticator, the mutation chain, from
random.Random("hkp-fuzz/SEED/INDEX") alone, so the same seed gives the same cases,
in any order, on any machine.
"""

from __future__ import annotations

import hashlib
import json
import random
import struct
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from hkp_radius.constants import MacSubtype

from . import mh as mh_level
from .radius import (
    HKP_VENDOR,
    MESSAGE_AUTHENTICATOR,
    USER_NAME,
    VENDOR_SPECIFIC,
    VT_AR_ADDRESS,
    VT_MOBILITY_HEADER,
    Attributes,
    as_received,
    hkp_vsas,
    vsa,
)

DEFAULT_NAI = b"fuzz@example.net"
DEFAULT_AR_ID = bytes.fromhex("20010db8000000000000000000000001")
VT_CARE_OF_ADDRESS = 3
CASE_FORMAT = 1


@dataclass(frozen=True)
class Setup:
    """What a run's cases are built from (the same for every case of a run)."""

    target: str  # "radius" or "mh"
    seed: int
    nai: bytes = DEFAULT_NAI
    hmk: bytes | None = None
    ar_id: bytes = DEFAULT_AR_ID
    timestamp: int | None = None  # an NTP Timestamp option in every template
    dictionary: Any = None  # pyrad Dictionary (radius target)


class Case:
    """One case. `expect` ("reject": an accept is wrong, or "any") and `reason` are
    computed when first read: a run needs them only for an answer that accepts, or to
    keep the case; for everything else the reference check would be wasted work."""

    __slots__ = (
        "_expect",
        "_judge",
        "_reason",
        "attributes",
        "authenticator",
        "chain",
        "index",
        "message_authenticator",
        "mh",
        "reference",
        "seed",
        "target",
    )  # fmt: skip

    def __init__(
        self,
        target: str,
        seed: int,
        index: int,
        chain: list[str],
        expect: str | None = None,
        reason: str | None = None,
        authenticator: bytes = b"",
        message_authenticator: str = "valid",
        attributes: Attributes | None = None,
        mh: bytes = b"",
        *,
        judge: Callable[[Case], tuple[str, str]] | None = None,
    ) -> None:
        self.target, self.seed, self.index, self.chain = target, seed, index, chain
        self.authenticator = authenticator
        self.message_authenticator = message_authenticator
        self.attributes: Attributes = [] if attributes is None else attributes
        self.mh = mh
        self.reference: mh_level.Reference | None = None  # kept by the judge, if it ran
        self._expect, self._reason, self._judge = expect, reason, judge

    def _judged(self) -> None:
        if self._expect is None or self._reason is None:
            if self._judge is None:
                raise ValueError("a case without an expectation")
            self._expect, self._reason = self._judge(self)
            self._judge = None

    @property
    def expect(self) -> str:
        self._judged()
        assert self._expect is not None
        return self._expect

    @property
    def reason(self) -> str:
        self._judged()
        assert self._reason is not None
        return self._reason

    def replace(self, **changes: Any) -> Case:
        """A copy with some fields changed (dataclasses.replace for this class)."""
        fields: dict[str, Any] = {
            "target": self.target, "seed": self.seed, "index": self.index,
            "chain": self.chain, "expect": self.expect, "reason": self.reason,
            "authenticator": self.authenticator,
            "message_authenticator": self.message_authenticator,
            "attributes": self.attributes, "mh": self.mh,
        }  # fmt: skip
        fields.update(changes)
        return Case(**fields)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Case) and self.to_json() == other.to_json()

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        return f"Case({self.target}, seed={self.seed}, index={self.index}, chain={self.chain})"

    def payload(self) -> bytes:
        """What the case is, for the digest: its attributes or its MH."""
        if self.target == "mh":
            return self.mh
        parts = [self.authenticator, self.message_authenticator.encode()]
        parts += [_TYPE_LENGTH(t, len(v)) + v for t, v in self.attributes]
        return b"".join(parts)

    def to_json(self) -> dict[str, Any]:
        return {
            "target": self.target,
            "seed": self.seed,
            "index": self.index,
            "chain": list(self.chain),
            "expect": self.expect,
            "reason": self.reason,
            "authenticator": self.authenticator.hex(),
            "message_authenticator": self.message_authenticator,
            "attributes": [[t, v.hex()] for t, v in self.attributes],
            "mh": self.mh.hex(),
            "format": CASE_FORMAT,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Case:
        return cls(
            target=str(data["target"]),
            seed=int(data["seed"]),
            index=int(data["index"]),
            chain=[str(c) for c in data["chain"]],
            expect=str(data["expect"]),
            reason=str(data.get("reason", "")),
            authenticator=bytes.fromhex(data.get("authenticator", "")),
            message_authenticator=str(data.get("message_authenticator", "valid")),
            attributes=[(int(t), bytes.fromhex(v)) for t, v in data.get("attributes", [])],
            mh=bytes.fromhex(data.get("mh", "")),
        )


_TYPE_LENGTH = struct.Struct("!BH").pack  # an attribute in payload(): type, 2-octet length


def rng_for(seed: int, index: int) -> random.Random:
    return random.Random(f"hkp-fuzz/{seed}/{index}")


DIGEST_BLOCK = 1024  # indices per block of cases_digest (a block never spans workers)


class Digest:
    """cases_digest, fed the cases in index order: SHA-256 over the SHA-256s of the
    blocks of DIGEST_BLOCK indices (index // DIGEST_BLOCK), each over its cases' index,
    chain and bytes. Equal digests, equal cases; and runs over adjacent index ranges
    split at block boundaries (--workers) merge into the digest of the whole."""

    def __init__(self) -> None:
        self.blocks: list[tuple[int, bytes]] = []  # (block number, its SHA-256)
        self._block = -1
        self._hash = hashlib.sha256()

    def update(self, case: Case) -> None:
        block = case.index // DIGEST_BLOCK
        if block != self._block:
            self._close()
            self._block, self._hash = block, hashlib.sha256()
        self._hash.update(f"{case.index}:{'|'.join(case.chain)}:".encode() + case.payload())

    def _close(self) -> None:
        if self._block >= 0:
            self.blocks.append((self._block, self._hash.digest()))
            self._block = -1

    def finished(self) -> list[tuple[int, bytes]]:
        self._close()
        return self.blocks

    def hexdigest(self) -> str:
        return merge_digests([self.finished()])


def merge_digests(parts: Iterable[list[tuple[int, bytes]]]) -> str:
    """The digest of runs' blocks together (each run's Digest.finished())."""
    blocks = sorted(block for part in parts for block in part)
    return hashlib.sha256(b"".join(value for _, value in blocks)).hexdigest()


def digest(cases: Iterable[Case]) -> str:
    """cases_digest of cases in index order (Digest): equal digests, equal cases."""
    h = Digest()
    for case in cases:
        h.update(case)
    return h.hexdigest()


# --- generic RADIUS mutators, driven by the dictionary ---

_MH_VSA = struct.pack("!IB", HKP_VENDOR, VT_MOBILITY_HEADER)
_AR_VSA = struct.pack("!IB", HKP_VENDOR, VT_AR_ADDRESS)


def _value_for(rng: random.Random, kind: str) -> tuple[str, bytes]:
    """A value of a dictionary type: boundaries, wrong lengths, or random."""
    if kind in ("integer", "date", "signed"):
        choice = rng.choice(["boundary", "short", "long"])
        if choice == "boundary":
            n = rng.choice([0, 1, 2**31 - 1, 2**31, 2**32 - 1])
            return f"int{n}", struct.pack("!I", n)
        size = rng.choice([0, 1, 3]) if choice == "short" else rng.choice([5, 8, 16])
        return f"int-len{size}", rng.randbytes(size)
    if kind == "ipaddr":
        size = rng.choice([4, 0, 3, 5, 16])
        return f"ipaddr-len{size}", rng.randbytes(size)
    if kind == "ipv6addr":
        size = rng.choice([16, 0, 4, 15, 17])
        return f"ipv6addr-len{size}", rng.randbytes(size)
    if kind == "ipv6prefix":
        size = rng.choice([2, 0, 1, 18, 19])
        return f"ipv6prefix-len{size}", bytes((0, rng.randrange(256))) + rng.randbytes(size)
    size = rng.choice([0, 1, 253, 254 + rng.randrange(40), rng.randrange(2, 200)])
    return f"{kind}-len{size}", rng.randbytes(size)


def g_extra_attribute(rng: random.Random, attrs: Attributes, setup: Setup) -> str:
    """An attribute of the dictionary with a boundary or malformed value of its type."""
    names = _sorted_names(setup.dictionary)
    if not names:
        return "none"
    name = rng.choice(names)
    definition = setup.dictionary.attributes[name]
    label, value = _value_for(rng, definition.type)
    if definition.encrypt == 1 and rng.random() < 0.5:  # User-Password: not 16-aligned
        label, value = "encrypt1-unaligned", rng.randbytes(rng.choice([1, 15, 17, 129]))
    elif definition.encrypt == 2 and rng.random() < 0.5:  # salt without the high bit
        label, value = "encrypt2-badsalt", b"\x00\x01" + rng.randbytes(16)
    if definition.vendor:
        vendor = setup.dictionary.vendors.GetForward(definition.vendor)
        attrs.insert(
            rng.randrange(len(attrs) + 1), (VENDOR_SPECIFIC, vsa(vendor, definition.code, value))
        )
    else:
        attrs.insert(rng.randrange(len(attrs) + 1), (definition.code, value))
    return f"{name}:{label}"


_NAMES: dict[int, tuple[Any, list[str]]] = {}


def _sorted_names(dictionary: Any) -> list[str]:
    """The dictionary's attribute names, sorted once per dictionary (by identity)."""
    if dictionary is None:
        return []
    kept = _NAMES.get(id(dictionary))
    if kept is None or kept[0] is not dictionary:
        kept = _NAMES[id(dictionary)] = (dictionary, sorted(dictionary.attributes))
    return kept[1]


def g_broken_vsa(rng: random.Random, attrs: Attributes, setup: Setup) -> str:
    which = rng.choice(["vendor-length", "short-header", "unknown-vendor", "vendor-zero"])
    data = rng.randbytes(rng.choice([0, 1, 10, 40]))
    if which == "vendor-length":
        value = vsa(HKP_VENDOR, rng.randrange(1, 11), data, rng.choice([0, 1, 255, len(data) + 3]))
    elif which == "short-header":
        value = struct.pack("!I", HKP_VENDOR)[: rng.randrange(5)]
    elif which == "unknown-vendor":
        value = vsa(rng.randrange(1, 2**32), rng.randrange(256), data)
    else:
        value = vsa(HKP_VENDOR, 0, data)
    attrs.insert(rng.randrange(len(attrs) + 1), (VENDOR_SPECIFIC, value))
    return which


def g_duplicate(rng: random.Random, attrs: Attributes, setup: Setup) -> str:
    index = rng.randrange(len(attrs))
    attrs.insert(rng.randrange(len(attrs) + 1), attrs[index])
    return f"attr{attrs[index][0]}"


def g_drop(rng: random.Random, attrs: Attributes, setup: Setup) -> str:
    return f"attr{attrs.pop(rng.randrange(len(attrs)))[0]}" if len(attrs) > 1 else "none"


def g_reorder(rng: random.Random, attrs: Attributes, setup: Setup) -> str:
    rng.shuffle(attrs)
    return "shuffled"


def g_split(rng: random.Random, attrs: Attributes, setup: Setup) -> str:
    """An attribute's value over two attributes of the same type."""
    index = rng.randrange(len(attrs))
    kind, value = attrs[index]
    if kind == VENDOR_SPECIFIC and len(value) >= 6:
        vendor, vendor_type = struct.unpack("!IB", value[:5])
        body = value[6:]
        cut = rng.randrange(len(body) + 1)
        attrs[index : index + 1] = [
            (kind, vsa(vendor, vendor_type, body[:cut])),
            (kind, vsa(vendor, vendor_type, body[cut:])),
        ]
    else:
        cut = rng.randrange(len(value) + 1)
        attrs[index : index + 1] = [(kind, value[:cut]), (kind, value[cut:])]
    return f"attr{kind}"


def g_concatenate(rng: random.Random, attrs: Attributes, setup: Setup) -> str:
    """Two HKP-Mobility-Header attributes joined (or one given twice its value)."""
    for index, (kind, value) in enumerate(attrs):
        if kind == VENDOR_SPECIFIC and value[:5] == _MH_VSA:
            body = value[6:]
            attrs[index] = (kind, vsa(HKP_VENDOR, VT_MOBILITY_HEADER, body + body[:200]))
            return "mh-doubled"
    return "none"


def g_user_name(rng: random.Random, attrs: Attributes, setup: Setup) -> str:
    for index, (kind, value) in enumerate(attrs):
        if kind == USER_NAME:
            choice = rng.choice(["upper", "empty-ish", "nul", "other"])
            new = {
                "upper": value.upper(),
                "empty-ish": b"@",
                "nul": value + b"\x00x",
                "other": b"other@example.net",
            }[choice]
            attrs[index] = (kind, new)
            return choice
    return "none"


def g_ar_address(rng: random.Random, attrs: Attributes, setup: Setup) -> str:
    size = rng.choice([0, 4, 15, 17])
    for index, (kind, value) in enumerate(attrs):
        if kind == VENDOR_SPECIFIC and value[:5] == _AR_VSA:
            attrs[index] = (kind, vsa(HKP_VENDOR, VT_AR_ADDRESS, rng.randbytes(size)))
            return f"len{size}"
    return "none"


GENERIC: dict[str, Callable[[random.Random, Attributes, Setup], str]] = {
    "radius.extra-attribute": g_extra_attribute,
    "radius.broken-vsa": g_broken_vsa,
    "radius.duplicate": g_duplicate,
    "radius.drop": g_drop,
    "radius.reorder": g_reorder,
    "radius.split": g_split,
    "radius.concatenate": g_concatenate,
    "radius.user-name": g_user_name,
    "radius.ar-address": g_ar_address,
}


def request_attributes(setup: Setup, wire: bytes, rng: random.Random) -> Attributes:
    """The P8 attributes: User-Name, the MH in chunks of 247 (or, sometimes, at other
    cut points: the split mutator of the HKP level), AR and CoA address."""
    return _generator(setup).attributes(wire, rng)


def radius_expectation(attrs: Attributes, setup: Setup, ma: str) -> tuple[str, str]:
    """May this request be accepted? Only if its framing holds, its Message-
    Authenticator is right, it names one AR, and its HKReq passes mh.reference."""
    expect, reason, _ = _radius_reference(attrs, setup, ma)
    return expect, reason


def _radius_reference(
    attrs: Attributes, setup: Setup, ma: str
) -> tuple[str, str, mh_level.Reference | None]:
    if ma != "valid":
        return "reject", f"Message-Authenticator {ma}", None
    # Judged as the server reads the packet: an over-long value's length octet is
    # sent modulo 256, and the rest of the value is read as the attributes after it.
    received = as_received(attrs)
    if received is None:
        return "reject", "an attribute over 253 octets breaks the framing", None
    if any(t == MESSAGE_AUTHENTICATOR for t, _ in received):  # ours is added when sent
        return "reject", "more than one Message-Authenticator (RFC 2869 §5.19)", None
    attrs = received
    # A server drops empty attributes and an HKP-AR-Address that is not 16 octets
    # (FreeRADIUS keeps them as raw attributes): the first well-formed one counts.
    names = [v for t, v in attrs if t == USER_NAME and v]
    ars = [v for v in hkp_vsas(attrs, VT_AR_ADDRESS) if len(v) == 16]
    if not names or not ars:
        return "reject", "no User-Name or no well-formed HKP-AR-Address", None
    ref = mh_level.reference(
        b"".join(hkp_vsas(attrs, VT_MOBILITY_HEADER)), mh_level.valid_hmk(setup.hmk), names[0]
    )
    return ("any" if ref.valid else "reject"), ref.reason, ref


def _judge_radius(setup: Setup) -> Callable[[Case], tuple[str, str]]:
    def judge(case: Case) -> tuple[str, str]:
        expect, reason, case.reference = _radius_reference(
            case.attributes, setup, case.message_authenticator
        )
        return expect, reason

    return judge


def _judge_mh(hmk: bytes | None) -> Callable[[Case], tuple[str, str]]:
    def judge(case: Case) -> tuple[str, str]:
        ref = mh_level.reference(case.mh, hmk, None)
        return ("any" if ref.valid else "reject"), ref.reason

    return judge


class Generator:
    """The cases of one Setup. What is the same for every case is built once: the
    template (mh.Templates), the HIKs (mh.Signer), the dictionary's sorted names, the
    AR and CoA attributes; the draws from the case's random source and their order are
    those of the first version, so (seed, index) gives the same case as it always did."""

    def __init__(self, setup: Setup) -> None:
        self.setup = setup
        self.hmk = mh_level.valid_hmk(setup.hmk)
        self.templates = mh_level.Templates(setup.nai, setup.timestamp)
        self.signer = mh_level.Signer(self.hmk)
        self.rng = random.Random()
        self.tail: Attributes = [
            (VENDOR_SPECIFIC, vsa(HKP_VENDOR, VT_AR_ADDRESS, setup.ar_id)),
            (VENDOR_SPECIFIC, vsa(HKP_VENDOR, VT_CARE_OF_ADDRESS, mh_level.CARE_OF_ADDRESS)),
        ]
        self.judge_radius = _judge_radius(setup)
        self.judge_mh = _judge_mh(self.hmk)
        self.mac_offset = self._template_mac_offset()

    def _template_mac_offset(self) -> int | None:
        """Where a template's MAC option is, if Signer.sign_at there gives what
        Signer.sign gives (checked on two templates); else None: sign walks them."""
        probe = random.Random("hkp-fuzz/mac-offset")
        samples = [self.templates.draw(probe) for _ in range(2)]
        offset = len(samples[0]) - 24  # MAC option: type, length, subtype, algorithm, 20
        for wire in samples:
            if len(wire) != len(samples[0]) or wire[offset : offset + 3] != bytes(
                (mh_level.MAC_OPTION, 22, MacSubtype.MN_HKS)
            ):
                return None
            if wire[4:6] != b"\x00\x00" or self.signer.sign_at(wire, offset) != (
                self.signer.sign(wire)
            ):
                return None
        return offset

    def sign_template(self, wire: bytes) -> bytes:
        if self.mac_offset is None or len(wire) != self.mac_offset + 24:
            return self.signer.sign(wire)
        return self.signer.sign_at(wire, self.mac_offset)

    def attributes(self, wire: bytes, rng: random.Random) -> Attributes:
        step = 247 if rng.random() < 0.9 else rng.randint(1, 246)
        attrs: Attributes = [(USER_NAME, self.setup.nai)]
        if len(wire) <= step:
            attrs.append((VENDOR_SPECIFIC, _MH_VSA + bytes((len(wire) + 2,)) + wire))
        else:
            chunks = [wire[i : i + step] for i in range(0, len(wire), step)]
            attrs += [(VENDOR_SPECIFIC, vsa(HKP_VENDOR, VT_MOBILITY_HEADER, c)) for c in chunks]
        attrs += self.tail
        return attrs

    def case(self, index: int) -> Case:
        """Case `index` of the run: index 0 is the unmutated template."""
        setup = self.setup
        rng = self.rng
        rng.seed(f"hkp-fuzz/{setup.seed}/{index}")  # rng_for(seed, index), reseeded
        wire = self.templates.draw(rng)
        chain: list[str] = []
        if index and (setup.target == "mh" or rng.random() < 0.5):
            chain, wire = mh_level.mutate(
                rng, wire, self.hmk, count=rng.choice(_COUNTS), signer=self.signer
            )
        else:
            wire = self.sign_template(wire)
        if setup.target == "mh":
            return Case("mh", setup.seed, index, chain, mh=wire, judge=self.judge_mh)
        authenticator = rng.randbytes(16)
        attrs = self.attributes(wire, rng)
        if index and (not chain or rng.random() < 0.3):
            for _ in range(rng.choice(_ROUNDS)):
                name = rng.choice(_GENERIC_NAMES)
                chain.append(f"{name}:{GENERIC[name](rng, attrs, setup)}")
        ma = "valid"
        if index and rng.random() < 0.02:
            ma = rng.choice(_MA_CHOICES)
            chain.append(f"radius.message-authenticator:{ma}")
        return Case(
            "radius", setup.seed, index, chain, None, None, authenticator, ma, attrs,
            judge=self.judge_radius,
        )  # fmt: skip


_GENERIC_NAMES = sorted(GENERIC)
_COUNTS, _ROUNDS, _MA_CHOICES = [1, 1, 1, 2, 3], [1, 1, 2], ["none", "wrong"]
_GENERATORS: dict[int, Generator] = {}


def _generator(setup: Setup) -> Generator:
    """The Generator of a Setup, kept while the Setup lives (by identity)."""
    generator = _GENERATORS.get(id(setup))
    if generator is None or generator.setup is not setup:
        if len(_GENERATORS) > 16:
            _GENERATORS.clear()
        generator = _GENERATORS[id(setup)] = Generator(setup)
    return generator


def generate(setup: Setup, index: int) -> Case:
    """Case `index` of the run: index 0 is the unmutated template."""
    return _generator(setup).case(index)


def cases_for(setup: Setup, count: int | None, start: int = 0) -> Iterator[Case]:
    """Cases start, start + 1, ... (count of them, or without end)."""
    index = start
    while count is None or index < start + count:
        yield generate(setup, index)
        index += 1


def mutator_names(case: Case) -> list[str]:
    """The mutators of a case's chain ("template" for none), for the per-mutator counts."""
    chain = case.chain
    if len(chain) == 1:
        return [chain[0].partition(":")[0]]
    return sorted({link.partition(":")[0] for link in chain}) or ["template"]


def save_case(path: Path, case: Case, extra: dict[str, Any]) -> None:
    data = case.to_json()
    data.update(extra)
    path.write_text(json.dumps(data, indent=2, sort_keys=True) + "\n")


def load_case(path: Path) -> tuple[Case, dict[str, Any]]:
    data = json.loads(path.read_text())
    if not isinstance(data, dict) or data.get("format") != CASE_FORMAT:
        raise ValueError(f"{path}: not an hkp-fuzz case file")
    return Case.from_json(data), data
