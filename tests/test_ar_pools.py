"""Issue 10: the AR's home server pools (ar_proxy/pools.py), sans-I/O, driven with
explicit `now` values: fail-over order, load-balance spreading, keyed-balance stickiness,
dead servers probed with Status-Server before they get requests again, counters."""

from __future__ import annotations

import configparser

import pytest

from ar_proxy.config import HomeServer, parse_config
from ar_proxy.pools import Pools, PoolType
from hkp_radius.errors import ConfigError


def server(name: str, probed: bool = True) -> HomeServer:
    return HomeServer(
        name, "127.0.0.1", 1812, b"s", revive_interval=30.0,
        status_check="status-server" if probed else "none",
        check_interval=5.0, num_answers_to_alive=2,
    )  # fmt: skip


A, B, C = server("a"), server("b"), server("c")
NAIS = [f"mn{i}@example.net".encode() for i in range(200)]


def first(pools: Pools, kind: PoolType, servers: tuple[HomeServer, ...], nai: bytes, now: float):
    return pools.order("pool", kind, servers, nai, now)[0]


def test_fail_over_keeps_the_configured_order() -> None:
    pools = Pools((A, B))
    assert pools.order("p", PoolType.FAIL_OVER, (A, B), b"x", 0.0) == [A, B]


def test_load_balance_spreads_requests_over_the_live_servers() -> None:
    pools = Pools((A, B))
    chosen = [first(pools, PoolType.LOAD_BALANCE, (A, B), nai, 0.0) for nai in NAIS[:10]]
    assert chosen.count(A) == chosen.count(B) == 5
    # The one with fewer requests outstanding comes first.
    pools.started(A)
    assert [first(pools, PoolType.LOAD_BALANCE, (A, B), b"x", 0.0) for _ in range(3)] == [B] * 3


def test_keyed_balance_sends_one_nai_to_one_server_and_moves_only_the_dead_ones() -> None:
    pools = Pools((A, B, C))
    pool = (A, B, C)
    before = {nai: first(pools, PoolType.KEYED_BALANCE, pool, nai, 0.0) for nai in NAIS}
    assert {n: first(pools, PoolType.KEYED_BALANCE, pool, n, 1.0) for n in NAIS} == before
    assert {s.name for s in before.values()} == {"a", "b", "c"}  # all three used
    pools.started(B)
    pools.unanswered(B, 10.0)  # B is dead
    during = {nai: first(pools, PoolType.KEYED_BALANCE, pool, nai, 11.0) for nai in NAIS}
    assert B not in during.values()
    assert all(during[n] == s for n, s in before.items() if s != B)  # only B's NAIs moved
    for now in (15.0, 20.0):  # two probes answered: alive, and its NAIs come back
        assert pools.probes_due(now) == [B]
        pools.probe_result(B, True, now)
    assert {n: first(pools, PoolType.KEYED_BALANCE, pool, n, 21.0) for n in NAIS} == before


def test_a_dead_server_is_probed_and_gets_nothing_until_enough_answers() -> None:
    pools = Pools((A, B))
    pools.started(A)
    [change] = pools.unanswered(A, 100.0)
    line = change.text
    assert "home server a marked dead" in line and "unanswered=1" in line
    assert pools.next_timer() == 105.0
    assert pools.probes_due(104.9) == []
    for now in (100.0, 104.0, 110.0, 500.0):  # not even after revive_interval
        assert pools.order("p", PoolType.FAIL_OVER, (A, B), b"x", now) == [B]
        assert pools.order("p", PoolType.LOAD_BALANCE, (A, B), b"x", now) == [B]
    assert pools.probes_due(105.0) == [A]
    assert pools.probes_due(105.0) == []  # one probe in flight at a time
    assert pools.next_timer() is None
    assert pools.probe_result(A, False, 107.0) == []  # unanswered: next one 5 s later
    assert pools.next_timer() == 112.0
    assert pools.probes_due(112.0) == [A]
    assert pools.probe_result(A, True, 112.5) == []  # one answer of the two needed
    assert pools.order("p", PoolType.FAIL_OVER, (A, B), b"x", 113.0) == [B]
    assert pools.probes_due(117.5) == [A]
    [change] = pools.probe_result(A, True, 118.0)
    line = change.text
    assert change.state == "alive" and change.counters["revived"] == 1
    assert "home server a alive again (2 Status-Server answer(s))" in line
    assert "probes=3 probe_answers=2 revived=1" in line
    assert pools.order("p", PoolType.FAIL_OVER, (A, B), b"x", 118.0) == [A, B]


def test_an_order_made_before_a_death_skips_the_dead_server() -> None:
    pools = Pools((A, B))
    order = pools.order("p", PoolType.FAIL_OVER, (B, A), b"x", 0.0)
    assert order == [B, A]
    pools.started(A)
    pools.unanswered(A, 1.0)  # another request found A dead meanwhile
    assert pools.may_use(B, (B, A), 2.0)
    assert not pools.may_use(A, (B, A), 2.0)  # B lives: A waits for its probes
    pools.started(B)
    pools.unanswered(B, 3.0)
    assert pools.may_use(A, (B, A), 4.0)  # all dead: every server may be tried


def test_all_dead_still_tries_every_server() -> None:
    pools = Pools((A, B))
    for s, now in ((A, 1.0), (B, 2.0)):
        pools.started(s)
        pools.unanswered(s, now)
    assert pools.order("p", PoolType.FAIL_OVER, (A, B), b"x", 3.0) == [A, B]


def test_without_status_checks_a_dead_server_is_tried_last_until_revive_interval() -> None:
    a, b = server("a", probed=False), server("b", probed=False)
    pools = Pools((a, b))
    pools.started(a)
    pools.unanswered(a, 0.0)
    assert pools.order("p", PoolType.FAIL_OVER, (a, b), b"x", 29.0) == [b, a]
    assert pools.probes_due(100.0) == [] and pools.next_timer() is None
    assert pools.order("p", PoolType.FAIL_OVER, (a, b), b"x", 30.0) == [a, b]
    pools.started(a)
    [change] = pools.answered(a, 31.0)
    assert "alive again (it answered a request)" in change.text


CONFIG = """
[ar]
address = 2001:db8::1
key_store = /tmp/hkp-pools-test-keys.sqlite
[home_server hks1]
ipaddr = 127.0.0.1
secret = s
status_check = status-server
check_interval = 2
num_answers_to_alive = 1
[home_server hks2]
ipaddr = 127.0.0.2
secret = s
[realm example.net]
home_servers = hks1 hks2
type = keyed-balance
[realm DEFAULT]
home_servers = hks1
"""


def _parse(text: str):
    parser = configparser.RawConfigParser()
    parser.read_string(text)
    return parse_config(parser, "test.conf")


def test_pool_settings_are_read_from_the_config() -> None:
    config = _parse(CONFIG)
    realm = config.realms["example.net"]
    assert realm.type == "keyed-balance"
    assert config.realms["default"].type == "fail-over"
    hks1, hks2 = realm.servers
    assert (hks1.status_check, hks1.check_interval, hks1.num_answers_to_alive) == (
        "status-server", 2.0, 1,
    )  # fmt: skip
    assert hks2.status_check == "none"


@pytest.mark.parametrize(
    ("old", "new", "named"),
    [
        ("type = keyed-balance", "type = round-robin", "type"),
        ("status_check = status-server", "status_check = ping", "status_check"),
        ("num_answers_to_alive = 1", "num_answers_to_alive = 0", "num_answers_to_alive"),
    ],
)
def test_bad_pool_settings_name_the_setting(old: str, new: str, named: str) -> None:
    with pytest.raises(ConfigError, match=named):
        _parse(CONFIG.replace(old, new))
