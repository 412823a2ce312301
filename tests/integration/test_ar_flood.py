"""Issue 15, Must show 1, with real FreeRADIUS and hkp-ar (default [admission] and [udp]
queues): during a 20 s unthrottled flood of junk HKReqs (random NAIs, bad MACs), from
one source address and from 256 addresses of one /64, a legitimate MN that already holds
a key and a new MN, each on its own /64, keep >= 90 % of their exchanges succeeding with
p99 < 100 ms (the MN's own monotonic times); the HKS gets no more Access-Requests than
the per-source limit lets through, never more in flight than the cap; the AR's and the
HKS's logs grow by a bounded number of lines (independent of the flood's size).

The flood is `hkp-flood --rate max` (one process, as fast as it can) for its whole
duration; the MNs run one exchange each every EXCHANGE_INTERVAL (an MN's own request
schedule, not a wait for anything) until the flood process has exited, and the
assertions are on the recorded figures. The rig (tests/integration/flood_rig.py) lives
in a network namespace of its own, its files in /dev/shm (fsyncs cost no disk time).
"""

from __future__ import annotations

import ipaddress
import math
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from ar_proxy.config import DEFAULT_EXCHANGE_LINES, DEFAULT_UDP_QUEUES
from ar_proxy.steering import queue_of
from hkp_radius.ar.admission import (
    MAX_IN_FLIGHT,
    SOURCE_BURST,
    SOURCE_RATE,
    SUMMARY_INTERVAL,
)

from .flood_rig import (
    FLOOD_PREFIX,
    FLOOD_SOURCES,
    KNOWN_HMK,
    KNOWN_IP,
    KNOWN_NAI,
    NEW_HMK,
    NEW_IP,
    NEW_NAI,
    Rig,
    make_rig,
)
from .mn_lab import needs_root_and_freeradius

pytestmark = [pytest.mark.integration, pytest.mark.netns, needs_root_and_freeradius]

FLOOD_SECONDS = 20.0
EXCHANGE_INTERVAL = 0.125  # each MN: 8 exchanges a second (its NAI may do 10)
SUCCESS = 0.90
P99 = 0.100  # seconds


@pytest.fixture
def rig() -> Iterator[Rig]:
    work = Path(tempfile.mkdtemp(prefix="hkp-flood-", dir="/dev/shm"))
    work.chmod(0o755)  # FreeRADIUS runs as freerad
    yield from make_rig(work)


def test_the_rigs_three_64s_land_in_three_receive_queues() -> None:
    queues = {
        queue_of(ipaddress.IPv6Address(a).packed, DEFAULT_UDP_QUEUES)
        for a in (KNOWN_IP, NEW_IP, str(ipaddress.IPv6Network(FLOOD_PREFIX)[1]))
    }
    assert len(queues) == 3


@pytest.mark.parametrize("sources", [1, FLOOD_SOURCES], ids=["one-source", "one-64"])
def test_legitimate_mns_survive_an_unthrottled_flood(rig: Rig, sources: int) -> None:
    ar = rig.start_ar()
    known = rig.mn(KNOWN_NAI, KNOWN_HMK, KNOWN_IP)
    new = rig.mn(NEW_NAI, NEW_HMK, NEW_IP)
    try:
        assert known.request()  # it holds a key (and its NAI is known) before the flood
        known.latencies.clear()
        ar_lines, hks_lines = ar.lines(), len(rig.hks.log_text().splitlines())
        answered_before = ar.status()["radius"]["hks"]["answered"]

        flood = rig.flood(FLOOD_SECONDS, "max", sources)
        flood.wait_started()
        began = time.monotonic()
        rounds = 0
        while flood.running:
            slot = began + rounds * EXCHANGE_INTERVAL
            if slot > time.monotonic():
                time.sleep(slot - time.monotonic())  # the MNs' schedule (module doc)
            known.request()
            new.request()
            rounds += 1
        figures = flood.figures()
        status = ar.status()
    finally:
        known.close()
        new.close()

    report = {
        "flood": figures,
        "known": (known.total, known.success_rate, known.percentile(0.99)),
        "new": (new.total, new.success_rate, new.percentile(0.99)),
        "admission": status["admission"],
    }
    assert figures["seconds"] >= FLOOD_SECONDS and figures["sources"] == sources, report
    for mn in (known, new):
        assert mn.total >= FLOOD_SECONDS / EXCHANGE_INTERVAL / 4, report  # it kept going
        assert mn.success_rate >= SUCCESS, report
        assert mn.percentile(0.99) < P99, report

    # what reached the HKS: the legitimate exchanges and at most the per-source allowance
    legit = len(known.latencies) + len(new.latencies) + known.failures + new.failures
    junk_allowance = SOURCE_BURST + SOURCE_RATE * (figures["seconds"] + 1)
    answered = status["radius"]["hks"]["answered"] - answered_before
    assert answered <= legit * 2 + junk_allowance, report  # x2: RADIUS retransmissions
    assert figures["sent"] > 20 * junk_allowance, report  # a flood, not a trickle
    peaks = status["admission"]["peak_in_flight"]
    assert peaks and max(peaks.values()) <= MAX_IN_FLIGHT, report
    assert status["admission"]["dropped"].get("source rate", 0) > junk_allowance, report

    # the logs: a line per key issued (the exchange, the retired key it replaced),
    # per interval at most exchange_lines unkeyed exchanges and two summary lines
    intervals = math.ceil(figures["seconds"] / SUMMARY_INTERVAL) + 2
    keys = len(known.latencies) + len(new.latencies)
    ar_grown = ar.lines() - ar_lines
    assert ar_grown <= 2 * keys + intervals * (DEFAULT_EXCHANGE_LINES + 2), (ar_grown, report)
    hks_grown = len(rig.hks.log_text().splitlines()) - hks_lines
    assert hks_grown <= keys + intervals, (hks_grown, report)
    assert ar.events("admission-dropped"), "drops are summarised"
