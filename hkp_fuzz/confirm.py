"""The `slow` oracle's confirmation: a slow answer is re-sent alone after the run.

An answer far outside the baseline (runner.Run._slow) makes its case a suspect, not yet
an anomaly: on a shared machine every case in flight turns slow at once when the server
(or the whole machine) is kept off the CPU, and such a stall says nothing about the
cases it hit. Once the run is over, each suspect is sent again, alone (window 1, its own
socket), with the baseline of the moment it was slow. Slow again: a `slow` anomaly, a
case the server handles slowly, which `replay` and `minimize` reproduce (the baseline
is kept in the anomaly file). Fast again: listed in the report's `slow_not_reproduced`
and not an anomaly. Other oracles firing on the re-sent case (no answer and a dead
server, a malformed reply) are anomalies as usual.

At most CONFIRM_LIMIT suspects are re-sent; any beyond are `slow` anomalies
unconfirmed (a server slow on that many cases is worth a look either way). For `mh` a
suspect is re-sent only once an AR no longer answers its Message ID from the response
cache (P10: 3 s after the answer), else the cached answer would come fast.
"""

from __future__ import annotations

import dataclasses
import time
from dataclasses import dataclass
from typing import Any

from .cases import Case

CONFIRM_LIMIT = 32
MH_RESPONSE_CACHE_S = 3.0  # P10: an AR's response cache lifetime after the answer


@dataclass
class Suspect:
    case: Case
    latency: float  # seconds, send to the answer's arrival
    baseline: float  # the slow oracle's median when it fired, seconds


def confirm_slow(run: Any) -> None:
    """Re-send `run.suspects` alone; see the module docstring. Fills run.anomalies and
    run.slow_not_reproduced."""
    for number, suspect in enumerate(run.suspects):
        detail = (
            f"answered after {suspect.latency:.3f} s (baseline {suspect.baseline * 1000:.1f} ms)"
        )
        if number >= CONFIRM_LIMIT:
            run._anomaly(
                "slow", suspect.case, f"{detail}; not re-sent (over {CONFIRM_LIMIT} suspects)",
                baseline_s=suspect.baseline,
            )  # fmt: skip
            continue
        if run.setup.target == "mh":
            _wait_for_cache(run, suspect)
        alone = _alone(run, suspect)
        slow = [a for a in alone.anomalies if a.oracle == "slow"]
        if slow:
            run._anomaly(
                "slow", suspect.case, f"{detail}; re-sent alone: {slow[0].detail}",
                baseline_s=suspect.baseline,
            )  # fmt: skip
        else:
            run.slow_not_reproduced.append(
                {
                    "seed": suspect.case.seed,
                    "index": suspect.case.index,
                    "chain": suspect.case.chain,
                    "latency_s": round(suspect.latency, 6),
                    "baseline_s": round(suspect.baseline, 6),
                    "alone_s": round(alone.latencies[0], 6) if alone.latencies else None,
                }
            )
        for other in alone.anomalies:
            if other.oracle != "slow":
                run._anomaly(other.oracle, other.case, f"{other.detail} (re-sent alone)")


def _alone(run: Any, suspect: Suspect) -> Any:
    options = dataclasses.replace(
        run.options,
        window=1,
        # time for the answer to be as slow again, and then some
        timeout=max(run.options.timeout, 2 * suspect.latency + 1.0),
        slow_baseline=suspect.baseline,
        confirm_slow=False,
        rate=None,
        duration=None,
        watch_rss_mib=None,
        out=None,
        progress=False,
    )
    alone = type(run)(run.setup, options)
    # mh: one record of when each Message ID was last sent, the run's and the re-sends'
    # (the probe's least recently sent ID, and _wait_for_cache)
    alone.id_last, alone.id_sent_at = run.id_last, run.id_sent_at
    alone.id_sequence = run.id_sequence
    alone.run([suspect.case])
    run.id_sequence = alone.id_sequence
    return alone


def _wait_for_cache(run: Any, suspect: Suspect) -> None:
    """Until an AR's cached answer to the suspect's Message ID (if any) has expired:
    the latest send of that ID in the run or an earlier confirmation, plus the wait
    for its answer, plus the cache lifetime."""
    mh = suspect.case.mh
    if len(mh) < 7:
        return
    last = run.id_sent_at[mh[6]]
    until = last + run.options.timeout + MH_RESPONSE_CACHE_S
    while (left := until - time.monotonic()) > 0:
        time.sleep(left)
