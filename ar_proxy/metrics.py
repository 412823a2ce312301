"""Counters of a running hkp-ar: read by `hkp-ar status` (ar_proxy.control) and, when
`[metrics] enabled = yes`, served to Prometheus (the prometheus_client library, its own
registry, an HTTP endpoint bound to loopback by default).

No label carries an NAI, an address of an MN or anything an MN chooses: outcomes and
drop reasons are the role's fixed strings (a malformed datagram's reason is cut at its
first ":" so that the decoder's detail never becomes a label value).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterator, Mapping
from typing import Any

from prometheus_client import CollectorRegistry, Gauge, Histogram, start_http_server
from prometheus_client import Counter as PromCounter
from prometheus_client.core import CounterMetricFamily
from prometheus_client.registry import Collector

# Exchange durations (s): from an HKReq to its HKResp; the RADIUS round trip dominates.
DURATION_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)


def reason_label(reason: str) -> str:
    return reason.split(":", 1)[0]


class AdmissionDrops(Collector):
    """hkp_ar_admission_dropped_total{reason}: read from the admission counters when
    scraped (the HTTP thread), so that counting a drop costs a flood nothing more."""

    def __init__(self, read: Callable[[], Mapping[str, int]]) -> None:
        self.read = read

    def collect(self) -> Iterator[CounterMetricFamily]:
        family = CounterMetricFamily(
            "hkp_ar_admission_dropped", "datagrams refused by admission control, by reason",
            labels=["reason"],
        )  # fmt: skip
        for reason, count in sorted(self.read().items()):
            family.add_metric([reason], count)
        yield family


class Metrics:
    def __init__(self, keys_held: Callable[[], int]) -> None:
        self.exchanges: Counter[str] = Counter()
        self.discarded: Counter[str] = Counter()
        self.radius: Counter[tuple[str, str]] = Counter()
        self.registry = CollectorRegistry()
        self._exchanges = PromCounter(
            "hkp_ar_exchanges", "HKReq/HKResp exchanges by outcome", ["outcome"],
            registry=self.registry,
        )  # fmt: skip
        self._duration = Histogram(
            "hkp_ar_exchange_seconds", "time from an HKReq to its HKResp (or its end)",
            buckets=DURATION_BUCKETS, registry=self.registry,
        )  # fmt: skip
        self._discarded = PromCounter(
            "hkp_ar_discarded", "datagrams dropped before they became an exchange", ["reason"],
            registry=self.registry,
        )  # fmt: skip
        self._radius = PromCounter(
            "hkp_ar_radius_results", "RADIUS requests by home server and result",
            ["home_server", "result"], registry=self.registry,
        )  # fmt: skip
        keys = Gauge("hkp_ar_keys", "handover keys held", registry=self.registry)
        keys.set_function(lambda: float(keys_held()))
        self.server: Any = None
        self._by_outcome: dict[str, Any] = {}
        self._by_result: dict[tuple[str, str], Any] = {}

    def exchange(self, outcome: str, seconds: float) -> None:
        self.exchanges[outcome] += 1
        child = self._by_outcome.get(outcome)
        if child is None:  # labels() looks up under a lock: once per outcome
            child = self._by_outcome[outcome] = self._exchanges.labels(outcome)
        child.inc()
        self._duration.observe(seconds)

    def discard(self, reason: str) -> None:
        label = reason_label(reason)
        self.discarded[label] += 1
        self._discarded.labels(label).inc()

    def radius_result(self, home_server: str, result: str) -> None:
        """result: answered, silent (no answer, port open), refused (port closed);
        no_connection (RadSec: refused, TLS failure, in back-off or lost), unreachable
        (its socket cannot be opened); probe_answered, probe_unanswered (Status-Server
        to a dead server, pools.py)."""
        self.radius[(home_server, result)] += 1
        child = self._by_result.get((home_server, result))
        if child is None:
            child = self._by_result[(home_server, result)] = self._radius.labels(
                home_server, result
            )
        child.inc()

    def count_admission(self, dropped: Callable[[], Mapping[str, int]]) -> None:
        """Serve admission drops by reason (`dropped()`: the role's fixed reason names)."""
        self.registry.register(AdmissionDrops(dropped))

    def serve(self, address: str, port: int) -> str:
        """Start the HTTP endpoint (a thread of prometheus_client); returns host:port."""
        self.server, _thread = start_http_server(port, addr=address, registry=self.registry)
        bound = self.server.server_address
        host = f"[{bound[0]}]" if ":" in bound[0] else bound[0]
        return f"{host}:{bound[1]}"

    def close(self) -> None:
        if self.server is not None:
            self.server.shutdown()
            self.server.server_close()
            self.server = None
