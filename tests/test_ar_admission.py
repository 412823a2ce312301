"""Issue 15: admission control at the AR (hkp_radius.ar.admission) and the per-NAI key
bound (hkp_radius.ar.keys), on explicit clocks: rates, bursts, refill, the in-flight cap,
the preference for known NAIs, the counters and the bounded summaries."""

from __future__ import annotations

import ipaddress

import pytest

from hkp_radius.ar.admission import (
    Admission,
    AdmissionConfig,
    Drop,
    peek_nai,
    source_key,
)
from hkp_radius.ar.events import DeleteKey, Discarded, SendAccessRequest, StoreKey, ValidateCoA
from hkp_radius.ar.keys import KeyTable, StoredKey
from hkp_radius.errors import ConfigError
from tests.ar_helpers import AR_ID, COA, COA2, HMK2, NAI, NAI2, build_hkreq
from tests.test_ar_role import Harness, issue, of

T = 1000.0  # a monotonic "now" to start from


def ip(text: str) -> bytes:
    return ipaddress.IPv6Address(text).packed


def src(text: str) -> bytes:
    return ip(text)


def test_sources_share_a_bucket_per_64_and_ipv4_per_address() -> None:
    assert source_key(ip("2001:db8:1:2::1")) == source_key(ip("2001:db8:1:2:ffff::9"))
    assert source_key(ip("2001:db8:1:2::1")) != source_key(ip("2001:db8:1:3::1"))
    assert source_key(ip("::ffff:127.0.0.2")) != source_key(ip("::ffff:127.0.0.3"))
    assert source_key(ip("::ffff:127.0.0.2")) == ip("::ffff:127.0.0.2")


def test_source_burst_then_rate_then_refill() -> None:
    adm = Admission(AdmissionConfig(source_rate=10, source_burst=5))
    junk = build_hkreq(nai=b"junk@example.net")
    a = src("2001:db8:1::1")
    assert [adm.admit_datagram(a, junk, T) for _ in range(5)] == [None] * 5  # the burst
    assert adm.admit_datagram(a, junk, T) is Drop.SOURCE_RATE
    # another address of the same /64 shares it; another /64 does not
    assert adm.admit_datagram(src("2001:db8:1::ffff"), junk, T) is Drop.SOURCE_RATE
    assert adm.admit_datagram(src("2001:db8:2::1"), junk, T) is None
    # 10 per second: 0.1 s later one more, not two
    assert adm.admit_datagram(a, junk, T + 0.1) is None
    assert adm.admit_datagram(a, junk, T + 0.1) is Drop.SOURCE_RATE
    # one second brings 10 tokens, never more than the burst
    admitted = [adm.admit_datagram(a, junk, T + 10.0) for _ in range(8)]
    assert admitted.count(None) == 5
    assert adm.dropped[Drop.SOURCE_RATE] == 1 + 1 + 1 + 3


def test_under_pressure_known_nais_pass_the_source_limit_but_not_their_own() -> None:
    adm = Admission(AdmissionConfig(source_rate=1, source_burst=1, nai_rate=1, nai_burst=2))
    a = src("2001:db8:1::1")
    known = build_hkreq(nai=NAI)
    stranger = build_hkreq(nai=b"stranger@example.net")
    adm.completed(NAI, T)
    assert adm.admit_datagram(a, stranger, T) is None  # the source's one token
    assert adm.admit_datagram(a, stranger, T) is Drop.SOURCE_RATE
    assert adm.admit_datagram(a, known, T) is None  # known: past the empty bucket
    assert adm.admit_nai(NAI, T) is None
    assert adm.admit_nai(NAI, T) is None
    assert adm.admit_nai(NAI, T) is Drop.NAI_RATE  # a known NAI is bounded too
    assert adm.admit_nai(NAI, T + 1.0) is None  # and refills at nai_rate
    # known lasts known_time after the last completed exchange
    later = T + adm.config.known_time
    assert not adm.is_known(NAI, later)
    assert adm.admit_datagram(a, known, later) is None  # refilled by then
    assert adm.admit_datagram(a, known, later) is Drop.SOURCE_RATE


def test_peek_nai_finds_the_mn_id_without_decoding_and_never_raises() -> None:
    wire = build_hkreq(nai=NAI)
    assert peek_nai(wire) == NAI
    assert peek_nai(build_hkreq(nai=None)) is None
    for cut in range(len(wire)):
        peek_nai(wire[:cut])  # truncated: None or a prefix, never an exception
    assert peek_nai(b"") is None and peek_nai(b"\x00") is None
    assert peek_nai(bytes(30) + b"\xff" * 100) is None


def test_in_flight_cap_per_group_with_slots_reserved_for_known_nais() -> None:
    groups = {NAI: "hks-a", NAI2: "hks-a", b"other@elsewhere": "hks-b"}
    adm = Admission(AdmissionConfig(max_in_flight=3, reserved_for_known=1), groups.get)
    adm.completed(NAI, T)  # alice is known, bob is not
    assert adm.may_ask_hks(NAI2, T) is None
    adm.asking(1, NAI2)
    assert adm.may_ask_hks(NAI2, T) is None
    adm.asking(2, NAI2)
    assert adm.may_ask_hks(NAI2, T) is Drop.RESERVED  # the last slot is alice's kind
    assert adm.may_ask_hks(NAI, T) is None
    adm.asking(3, NAI)
    assert adm.may_ask_hks(NAI, T) is Drop.IN_FLIGHT
    assert adm.may_ask_hks(b"other@elsewhere", T) is None  # another home server
    assert adm.in_flight["hks-a"] == 3 and adm.peak_in_flight["hks-a"] == 3
    adm.answered(1)
    adm.answered(1)  # twice: counted once
    assert adm.in_flight["hks-a"] == 2
    assert adm.may_ask_hks(NAI2, T) is Drop.RESERVED
    adm.answered(2)
    assert adm.may_ask_hks(NAI2, T) is None
    assert adm.dropped == {Drop.RESERVED: 2, Drop.IN_FLIGHT: 1}


def test_summaries_count_by_reason_at_most_once_per_interval() -> None:
    adm = Admission(AdmissionConfig(source_rate=1, source_burst=1, summary_interval=10))
    a, junk = src("2001:db8:1::1"), build_hkreq(nai=b"junk@example.net")
    assert adm.summary(T) is None  # nothing dropped: no line
    adm.admit_datagram(a, junk, T)
    for _ in range(1000):
        adm.admit_datagram(a, junk, T)
    first = adm.summary(T)  # the first after a quiet interval comes at once
    assert first is not None and first["dropped"] == {"source rate": 1000}
    lines = admitted = 0
    for step in range(2001):  # 20 s of drops every 10 ms
        now = T + step * 0.01
        admitted += adm.admit_datagram(a, junk, now) is None
        lines += adm.summary(now) is not None
    assert lines == 2  # at T + 10 and T + 20 s
    assert 19 <= admitted <= 21  # one token a second
    assert adm.admit_datagram(a, junk, T + 20.5) is Drop.SOURCE_RATE
    assert adm.summary(T + 20.5) is None  # within the interval: held back
    rest = adm.summary(T + 20.5, force=True)  # at shutdown: written
    assert rest is not None and rest["dropped"] == {"source rate": 1}
    assert adm.dropped[Drop.SOURCE_RATE] == 1000 + 2001 - admitted + 1
    assert adm.counters()["dropped"] == {"source rate": adm.dropped[Drop.SOURCE_RATE]}


def test_bucket_tables_stay_bounded_and_forget_idle_sources_first() -> None:
    adm = Admission(AdmissionConfig(source_rate=1, source_burst=2, max_tracked=16))
    junk = build_hkreq(nai=b"junk@example.net")
    busy = src("2001:db8:ffff::1")
    adm.admit_datagram(busy, junk, T)
    adm.admit_datagram(busy, junk, T)
    assert adm.admit_datagram(busy, junk, T) is Drop.SOURCE_RATE
    for i in range(1000):
        adm.admit_datagram(src(f"2001:db8:{i:x}::1"), junk, T + 0.001 * i)
        assert len(adm._sources) <= 16
    # the busy /64's empty bucket was forgotten at worst; it never gained tokens by it
    # beyond a fresh burst, and the table never grew
    assert len(adm._sources) <= 16


@pytest.mark.parametrize(
    "settings",
    [
        {"source_rate": 0},
        {"nai_burst": 0.5},
        {"max_in_flight": 0},
        {"max_in_flight": 4, "reserved_for_known": 4},
        {"max_tracked": 1},
    ],
)
def test_bad_settings_are_config_errors(settings: dict[str, float]) -> None:
    with pytest.raises(ConfigError):
        AdmissionConfig(**settings)  # type: ignore[arg-type]


# ---- the role with admission control ------------------------------------------------


def test_role_refuses_a_greedy_nai_before_anything_else_and_counts_it() -> None:
    adm = Admission(AdmissionConfig(nai_rate=1, nai_burst=2))
    h = Harness(admission=adm)
    issue(h, message_id=1)
    issue(h, message_id=2)
    actions = h.send(build_hkreq(message_id=3, timestamp=h.stamp()))
    assert [type(a) for a in actions] == [Discarded]
    assert "NAI rate" in actions[0].reason  # type: ignore[attr-defined]
    assert h.hks_asked == 2 and adm.dropped[Drop.NAI_RATE] == 1
    h.advance(1.0)
    issue(h, message_id=4)  # refilled


def test_role_keeps_in_flight_under_the_cap_and_releases_slots() -> None:
    adm = Admission(AdmissionConfig(max_in_flight=2, reserved_for_known=0))
    h = Harness(admission=adm)
    first = of(ValidateCoA, h.send(build_hkreq(message_id=1, coa=COA)))[0]
    second = of(ValidateCoA, h.send(build_hkreq(message_id=2, nai=NAI2, hmk=HMK2, coa=COA2)))[0]
    out1 = of(SendAccessRequest, h.ar.coa_validated(first.ref, True, h.now))
    out2 = of(SendAccessRequest, h.ar.coa_validated(second.ref, True, h.now))
    assert out1 and out2 and adm.in_flight[None] == 2
    third = h.send(build_hkreq(message_id=3, coa=ip("2001:db8::300"), nai=b"carol@example.net"))
    assert [type(a) for a in third] == [Discarded] and adm.dropped[Drop.IN_FLIGHT] == 1
    h.ar.radius_timeout(out1[0].ref, h.now)  # an answer, a timeout or a cancel frees one
    assert adm.in_flight[None] == 1
    h.ar.receive_radius_answer(out2[0].ref, h.hks_answer(out2[0]), h.now, h.wall)
    assert adm.in_flight.get(None, 0) == 0 and adm.peak_in_flight[None] == 2
    assert adm.is_known(NAI2, h.now) and not adm.is_known(NAI, h.now)


# ---- the per-NAI key bound ---------------------------------------------------------------


def key(spi: int, nai: bytes = NAI, coa: bytes | None = None) -> StoredKey:
    return StoredKey(spi, nai, bytes(20), coa, 2e9, 1, AR_ID)


def test_key_table_retires_the_oldest_beyond_the_bound_and_spares_other_nais() -> None:
    table = KeyTable(max_per_nai=2)
    table.add(key(300, NAI2), T + 100)
    for spi in range(1000, 1010):
        table.add(key(spi), T + 50)  # same deadline: order of arrival decides
        retired = table.surplus(NAI)
        assert [k.spi for k in retired] == ([spi - 2] if spi >= 1002 else [])
    assert sorted(k.spi for k in table.for_nai(NAI, T)) == [1008, 1009]
    assert [k.spi for k in table.for_nai(NAI2, T)] == [300]
    assert len(table) == 3


def test_key_table_load_keeps_the_newest_within_the_bound() -> None:
    table = KeyTable(max_per_nai=2)
    keys = [
        StoredKey(spi, NAI, bytes(20), None, 2e9 + spi, 1, AR_ID) for spi in (500, 400, 600, 300)
    ]
    gone = table.load([*keys, key(700, NAI2)], T, 1.9e9)
    assert sorted(k.spi for k in gone) == [300, 400]
    assert sorted(k.spi for k in table) == [500, 600, 700]


def test_role_store_actions_retire_the_oldest_key_in_the_key_store_too() -> None:
    h = Harness()
    spis = [issue(h, message_id=mid) for mid in range(1, 6)]
    assert sorted(k.spi for k in h.ar.keys.for_nai(NAI, h.now)) == sorted(spis[-2:])
    wire = build_hkreq(message_id=6, timestamp=h.stamp())
    actions = h.exchange(wire)
    deleted = of(DeleteKey, actions)
    stored = of(StoreKey, actions)
    assert [d.spi for d in deleted] == [spis[-2]] and "retired" in deleted[0].reason
    assert all(s.key.spi != spis[-2] for s in stored)  # never written back after deletion
    # the deletion comes after every store, so the store never resurrects it
    assert actions.index(deleted[0]) > max(actions.index(s) for s in stored)
    bob = issue(h, message_id=1, nai=NAI2, coa=COA2)
    issue(h, message_id=7)
    assert h.ar.keys.get(bob) is not None and len(h.ar.keys.for_nai(NAI, h.now)) == 2
