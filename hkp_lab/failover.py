"""The lab's failover scenario (`hkp-lab run --hks 2 --store postgresql`): MN load through
the AR's pool while one HKS is killed mid-run, then brought back.

1. load over the lab's load identities (mn_client.run_load); once the AR has logged a
   share of the exchanges, one HKS is killed (SIGKILL: no goodbye);
2. every exchange must still end with a key, within the MN's own retry budget (the AR
   fails over to the other HKS; the shared replay state refuses nothing twice);
3. the killed HKS is started again on its port; the AR probes it with Status-Server and
   marks it alive (its log), and only then gives it requests again: a second load must
   reach it.
"""

from __future__ import annotations

import ipaddress
import json
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

from hkp_radius.mn import MNConfig
from mn_client import LoadResult, UdpTransport, run_load

from .lab import Lab, LabError, wait_for

LOAD_EXCHANGES = 300
LOAD_IN_FLIGHT = 16
KILL_AFTER = 60  # exchanges the AR has logged before the kill
STEP_TIMEOUT = 60.0
LOAD_COAS = ipaddress.IPv6Network("2001:db8:10ad::/64")  # as `hkp-mn load` (permissive AR)


def ar_events(log: Path, name: str) -> list[dict[str, Any]]:
    found = []
    for line in log.read_text(errors="replace").splitlines():
        try:
            event = json.loads(line)
        except ValueError:
            continue
        if isinstance(event, dict) and event.get("event") == name:
            found.append(event)
    return found


def _load(lab: Lab, total: int, out: list[LoadResult]) -> None:
    mapped = ipaddress.IPv6Address(lab.ar_host).ipv4_mapped
    ar_id = ipaddress.IPv6Address(lab.ar_id).packed
    endpoint = (str(mapped or lab.ar_host), lab.ar_port)
    configs = [MNConfig(nai=i.nai.encode(), hmk=i.hmk) for i in lab.load_identities]
    coas = [(LOAD_COAS.network_address + 1 + n).packed for n in range(len(configs))]
    out.append(
        run_load(configs, lambda: UdpTransport({ar_id: endpoint}), ar_id, total,
                 LOAD_IN_FLIGHT, coas)
    )  # fmt: skip


def run_failover(lab: Lab, say: Callable[[str], None]) -> bool:
    if lab.topology is not None:
        say("\n[failover] skipped: UDP lab only")
        return True
    victim, name = lab.hks_servers[-1], lab.hks_names[-1]
    say(f"\n[failover] {LOAD_EXCHANGES} exchanges, {LOAD_IN_FLIGHT} in flight; {name} "
        f"(port {victim.port}) is killed after {KILL_AFTER}")  # fmt: skip
    already = len(ar_events(lab.ar_log, "exchange"))
    figures: list[LoadResult] = []
    worker = threading.Thread(target=_load, args=(lab, LOAD_EXCHANGES, figures))
    worker.start()
    try:
        wait_for(
            lambda: len(ar_events(lab.ar_log, "exchange")) - already >= KILL_AFTER
            or not worker.is_alive(),
            STEP_TIMEOUT, "the AR's exchange lines",
        )  # fmt: skip
        assert victim.process is not None
        victim.process.kill()
        victim.stop()  # reaps it
        say(f"    killed {name} (SIGKILL)")
    finally:
        worker.join()
    [first] = figures
    for line in first.lines():
        say(f"    {line}")
    ok = first.failed == 0
    dead = [e for e in ar_events(lab.ar_log, "home_server_state")
            if e.get("home_server") == name and e.get("state") == "dead"]  # fmt: skip
    say(f"    AR: {dead[-1]['message'] if dead else 'never marked ' + name + ' dead'}")
    ok = ok and bool(dead)
    try:
        victim.start()
    except RuntimeError as exc:
        raise LabError(f"{name} did not start again: {exc}") from None
    say(f"    started {name} again; waiting for the AR's Status-Server probes")

    def revived() -> list[dict[str, Any]]:
        return [e for e in ar_events(lab.ar_log, "home_server_state")
                if e.get("home_server") == name and e.get("state") == "alive"]  # fmt: skip

    wait_for(revived, STEP_TIMEOUT, f"the AR to mark {name} alive")
    alive = revived()[-1]
    say(f"    AR: {alive['message']}")
    # No request went to it while it was dead: only probes.
    untouched = bool(dead) and alive["requests"] == dead[-1]["requests"]
    say(f"    requests to {name} while dead: "
        f"{alive['requests'] - dead[-1]['requests'] if dead else '?'} (probes only)")  # fmt: skip
    before = victim.log_text().count("Accept")
    second: list[LoadResult] = []
    _load(lab, 40, second)
    reached = victim.log_text().count("Accept") > before
    say(f"    then {second[0].succeeded} of 40 exchanges, {name} issued keys again: "
        f"{'yes' if reached else 'no'}")  # fmt: skip
    ok = ok and untouched and reached and second[0].failed == 0
    say(f"    => {'as expected' if ok else 'NOT as expected'}")
    return ok
