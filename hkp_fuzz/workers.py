"""`--workers N`: N processes over adjacent index ranges of one run, one report.

A worker is an ordinary Run over its range, with its own sockets (its own source port,
so RADIUS identifiers and mh slots are its own) and its own oracles; the cases are the
same as one process's, because a case is its (seed, index). The ranges are cut at
cases_digest's block boundaries, so the merged digest is the one process's digest, and
the merged report is the same for any N but for rates and timings (the anomalies in
index order, the counts summed).
"""

from __future__ import annotations

import dataclasses
import itertools
import multiprocessing
import resource
import time
from collections.abc import Iterable, Iterator
from multiprocessing.connection import Connection
from typing import Any

from .cases import DIGEST_BLOCK, Case, Digest, Setup, cases_for, merge_digests
from .runner import ORACLES, Options, Run
from .system import rss_kib


class Digesting:
    """Cases as they are generated, hashed on the way into cases_digest."""

    def __init__(self, cases: Iterable[Case]) -> None:
        self.cases = cases
        self.digest = Digest()

    def __iter__(self) -> Iterator[Case]:
        update = self.digest.update
        for case in self.cases:
            update(case)
            yield case


def split(start: int, count: int, workers: int) -> list[tuple[int, int]]:
    """[start, start + count) as up to `workers` adjacent (first index, count) ranges,
    cut at multiples of DIGEST_BLOCK, as even as the blocks allow."""
    end = start + count
    cuts = [start]
    for k in range(1, workers):
        cut = round((start + count * k / workers) / DIGEST_BLOCK) * DIGEST_BLOCK
        cuts.append(min(max(cut, cuts[-1]), end))
    cuts.append(end)
    return [(lo, hi - lo) for lo, hi in itertools.pairwise(cuts) if hi > lo]


def _cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def _worker(conn: Connection, setup: Setup, options: Options, start: int, count: int) -> None:
    try:
        cases = Digesting(cases_for(setup, count, start))
        run = Run(setup, options).run(cases)
        conn.send(("ok", run.report(None), cases.digest.finished(), _cpu()))
    except BaseException as exc:  # reported by the parent, never lost
        conn.send(("error", f"{type(exc).__name__}: {exc}", [], _cpu()))
    finally:
        conn.close()


def run_workers(
    setup: Setup, options: Options, start: int, count: int, workers: int
) -> dict[str, Any]:
    """One run's report from `workers` processes (fork)."""
    ranges = split(start, count, workers)
    context = multiprocessing.get_context("fork")
    rss_start = rss_kib(options.watch_pid) if options.watch_rss_mib is not None else None
    started = time.monotonic()
    procs = []
    for number, (first, size) in enumerate(ranges):
        mine = dataclasses.replace(
            options,
            rate=options.rate / len(ranges) if options.rate else None,
            progress=options.progress and number == 0,  # one progress line: worker 0's
            watch_rss_mib=None,  # the memory oracle is the parent's, over the whole run
            restart_command=None,
        )
        receiver, sender = context.Pipe(duplex=False)
        process = context.Process(target=_worker, args=(sender, setup, mine, first, size))
        process.start()
        sender.close()
        procs.append((process, receiver))
    results = []
    for process, receiver in procs:
        try:
            results.append(receiver.recv())
        except EOFError:
            results.append(("error", f"worker exited with {process.exitcode}", [], 0.0))
        process.join()
    elapsed = time.monotonic() - started
    failed = [detail for status, detail, _, _ in results if status != "ok"]
    if failed:
        raise RuntimeError(f"hkp-fuzz worker failed: {failed[0]}")
    report = merge(
        [r[1] for r in results], elapsed, merge_digests(r[2] for r in results), len(ranges)
    )
    rss_end = rss_kib(options.watch_pid) if rss_start is not None else None
    limit = options.watch_rss_mib
    if limit is not None and rss_start and rss_end and (rss_end - rss_start) / 1024 > limit:
        report["anomalies"].append(
            {
                "oracle": "memory",
                "seed": setup.seed,
                "index": start + report["cases"] - 1,
                "chain": ["run"],
                "detail": f"RSS grew from {rss_start} KiB to {rss_end} KiB",
                "file": None,
            }
        )
        report["anomaly_counts"]["memory"] += 1
    return report


def _sum(into: dict[str, int], counts: dict[str, int]) -> None:
    for key, value in counts.items():
        into[key] = into.get(key, 0) + value


def merge(
    reports: list[dict[str, Any]], elapsed: float, digest: str, workers: int
) -> dict[str, Any]:
    """The workers' reports (Run.report) as one: counts summed, anomalies by index."""
    outcomes: dict[str, int] = {}
    mutators: dict[str, dict[str, int]] = {}
    counts = {oracle: 0 for oracle in ORACLES}
    anomalies: list[dict[str, Any]] = []
    transient: list[dict[str, Any]] = []
    for report in reports:
        transient += report["slow_not_reproduced"]
        _sum(outcomes, report["outcomes"])
        for name, per in report["mutators"].items():
            _sum(mutators.setdefault(name, {}), per)
        _sum(counts, report["anomaly_counts"])
        anomalies += report["anomalies"]
    cases = sum(int(r["cases"]) for r in reports)
    first = reports[0]
    return {
        "tool": first["tool"],
        "target": first["target"],
        "server": first["server"],
        "seed": first["seed"],
        "cases": cases,
        "elapsed_s": round(elapsed, 3),
        "rate": round(cases / max(elapsed, 1e-9), 1),
        "cases_digest": digest,
        "stopped": next((r["stopped"] for r in reports if r["stopped"] != "done"), "done"),
        "outcomes": dict(sorted(outcomes.items())),
        "mutators": {k: dict(sorted(v.items())) for k, v in sorted(mutators.items())},
        "late_answers": sum(int(r["late_answers"]) for r in reports),
        "anomaly_counts": counts,
        "anomalies": sorted(anomalies, key=lambda a: (a["index"], a["oracle"])),
        "slow_not_reproduced": sorted(transient, key=lambda s: s["index"]),
        "workers": workers,
    }
