"""`hkp-lab`: a private FreeRADIUS with the HKS, an AR, and MN exchanges through them.

    hkp-lab            # = hkp-lab run: start, run the exchanges, print the account, stop
    hkp-lab run FILE   # (root) run a scenario file (TOML, docs/lab.md); `handover` is shipped
    hkp-lab up         # start and leave running; print the endpoints as JSON
    hkp-lab down       # stop what `up` started
    hkp-lab --netns    # (root) MN and AR in their own network namespaces, raw IPv6
    hkp-lab up --hks 2 --store postgresql   # two HKS sharing PostgreSQL, pooled at the AR;
                       # `run` with them adds the failover scenario (one HKS killed mid-run)
    hkp-lab --udp-radius  # AR to HKS over RADIUS/UDP; the default is RadSec (RFC 6614)

State lives in --dir, else $HKP_LAB_DIR, else /var/lib/hkp-lab (root) or a per-user
directory. `run` works in a fresh directory under /tmp and removes it afterwards.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

from hkp_support.labstate import processes_path, state_dir

EXIT_OK, EXIT_FAILED, EXIT_SETUP = 0, 1, 2


def _missing_prerequisites(use_netns: bool) -> list[str]:
    from hkp_support.freeradius import FREERADIUS

    problems = []
    if not os.path.exists(FREERADIUS):
        problems.append(f"FreeRADIUS ({FREERADIUS}) is not installed")
    try:
        import pyrad  # noqa: F401
    except ImportError:
        problems.append("the Python package pyrad is not installed")
    if use_netns and os.geteuid() != 0:
        problems.append("--netns needs root")
    if use_netns and not shutil.which("ip"):
        problems.append("the `ip` command (iproute2) is not installed")
    return problems


def _check(use_netns: bool) -> bool:
    problems = _missing_prerequisites(use_netns)
    for problem in problems:
        print(f"hkp-lab: {problem}", file=sys.stderr)
    if problems:
        print(
            "hkp-lab: run scripts/install.sh as root (or scripts/lab.sh, which installs "
            "then runs the lab)",
            file=sys.stderr,
        )
    return not problems


def cmd_run(args: argparse.Namespace) -> int:
    from .account import Runner
    from .lab import Lab, LabError
    from .netns import NetnsError

    if not _check(args.netns):
        return EXIT_SETUP
    temporary = args.dir is None
    directory = Path(args.dir).resolve() if args.dir else Path(
        tempfile.mkdtemp(prefix="hkp-lab-run-", dir="/tmp")
    )  # fmt: skip
    try:
        lab = Lab(
            directory,
            use_netns=args.netns,
            hks_count=args.hks,
            store=args.store,
            udp_radius=args.udp_radius,
        )
    except LabError as exc:
        print(f"hkp-lab: {exc}", file=sys.stderr)
        return EXIT_SETUP
    began = time.monotonic()
    print("hkp-lab: starting a private FreeRADIUS with the HKS module and an AR ...", flush=True)
    try:
        try:
            lab.start()
        except (LabError, OSError, RuntimeError) as exc:
            print(f"hkp-lab: cannot start the lab: {exc}", file=sys.stderr)
            return EXIT_SETUP
        assert lab.hks is not None
        for server in lab.hks_servers:
            port = server.port if lab.udp_radius else server.radsec_port
            print(f"  HKS: FreeRADIUS {server.address} port {port} ({server.log_path})")
        print(f"  AR-HKS: {lab.radius_transport}")
        if lab.postgres is not None:
            print(f"  replay state: PostgreSQL {lab.postgres.conninfo()}")
        if lab.topology is not None:
            t = lab.topology
            print(f"  AR:  hkp-ar in netns {t.ar_ns}, raw IPv6 at {t.ar_address} (AR-ID)")
            print(f"  MN:  netns {t.mn_ns}, address {t.mn_address}")
        else:
            print(f"  AR:  hkp-ar on UDP [{lab.ar_host}]:{lab.ar_port}, AR-ID {lab.ar_id}")
        print(f"  MNs: {', '.join(i.nai for i in lab.identities)} (HMKs of 64 random octets)")
        try:
            ok = Runner(lab, lambda line: print(line, flush=True)).run()
            if len(lab.hks_servers) > 1:
                from .failover import run_failover

                ok = run_failover(lab, lambda line: print(line, flush=True)) and ok
        except (LabError, NetnsError, OSError) as exc:  # e.g. a socket the MN could not open
            print(f"hkp-lab: the exchanges stopped: {exc}", file=sys.stderr)
            ok = False
    finally:
        lab.stop()
        if temporary:
            shutil.rmtree(directory, ignore_errors=True)
    took = time.monotonic() - began
    print(f"\nhkp-lab: {'all exchanges as expected' if ok else 'SOME EXCHANGES FAILED'}; "
          f"stopped everything it started ({took:.1f} s)")  # fmt: skip
    return EXIT_OK if ok else EXIT_FAILED


def cmd_scenario(args: argparse.Namespace) -> int:
    """`hkp-lab run FILE`: exit 0 when every step got what it expected, 1 when one did
    not (naming it), 2 when the file cannot run (naming the line) or the lab cannot start."""
    from .handover import HandoverLab, HandoverRunner
    from .lab import LabError
    from .netns import NetnsError
    from .scenario import SHIPPED, ScenarioError, load

    path = Path(args.scenario)
    if not path.exists() and (SHIPPED / f"{args.scenario}.toml").exists():
        path = SHIPPED / f"{args.scenario}.toml"
    try:
        scenario = load(path)
    except ScenarioError as exc:
        print(f"hkp-lab: {exc}", file=sys.stderr)
        return EXIT_SETUP
    if not _check(True):
        return EXIT_SETUP
    directory = Path(tempfile.mkdtemp(prefix="hkp-lab-scenario-", dir="/tmp"))
    print(f"hkp-lab: {scenario.title}")
    print(f"  one HKS, ARs {', '.join(scenario.routers)}, MNs {', '.join(scenario.mns)}")
    lab = HandoverLab(directory, scenario.routers)
    began = time.monotonic()
    try:
        try:
            lab.start()
        except (LabError, NetnsError, OSError, RuntimeError) as exc:
            print(f"hkp-lab: cannot start the lab: {exc}", file=sys.stderr)
            return EXIT_SETUP
        assert lab.links is not None
        for router in lab.links.routers.values():
            print(f"  {router.name}: hkp-ar in netns {router.namespace}, AR-ID {router.address}, "
                  f"link {router.access_prefix}")  # fmt: skip
        results = HandoverRunner(lab, lambda line: print(line, flush=True)).run(scenario.steps)
    finally:
        lab.stop()
        shutil.rmtree(directory, ignore_errors=True)
    failed = [r for r in results if not r.ok]
    took = time.monotonic() - began
    for result in failed:
        step = result.step
        print(f"hkp-lab: {path}:line {step.line}: step {step.do} did not get "
              f"{step.expect or 'through'}", file=sys.stderr)  # fmt: skip
    verdict = (
        f"{len(failed)} of {len(results)} steps FAILED" if failed else "every step as expected"
    )
    print(f"\nhkp-lab: {verdict}; stopped everything it started ({took:.1f} s)")
    return EXIT_FAILED if failed else EXIT_OK


def cmd_up(args: argparse.Namespace) -> int:
    from .lab import Lab, LabError

    if not _check(args.netns):
        return EXIT_SETUP
    directory = state_dir(args.dir)
    if processes_path(directory).exists():
        print(f"hkp-lab: a lab is already up in {directory}: `hkp-lab down` first",
              file=sys.stderr)  # fmt: skip
        return EXIT_SETUP
    try:
        lab = Lab(directory, use_netns=args.netns, hks_count=args.hks, store=args.store,
                  udp_radius=args.udp_radius)  # fmt: skip
        lab.start(detach=True)
    except (LabError, OSError, RuntimeError) as exc:
        print(f"hkp-lab: cannot start the lab: {exc}", file=sys.stderr)
        return EXIT_SETUP
    path = lab.write_endpoints()
    print(json.dumps(lab.endpoints(), indent=1))
    print(f"hkp-lab: AR-HKS: {lab.radius_transport}", file=sys.stderr)
    print(f"hkp-lab: up; endpoints in {path}; stop with `hkp-lab down`", file=sys.stderr)
    return EXIT_OK


def cmd_down(args: argparse.Namespace) -> int:
    from .lab import stop_recorded

    directory = state_dir(args.dir)
    done = stop_recorded(directory)
    for line in done or [f"no lab is up in {directory}"]:
        print(f"hkp-lab: {line}")
    return EXIT_OK


def _positive(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = 0
    if not 1 <= value <= 16:
        raise argparse.ArgumentTypeError(f"{text!r}: 1 to 16 HKS servers")
    return value


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="hkp-lab", description=__doc__.split("\n\n")[0])
    parser.add_argument("command", nargs="?", default="run", choices=("run", "up", "down"))
    parser.add_argument("scenario", nargs="?", help="run: a scenario file (or `handover`)")
    parser.add_argument("--netns", action="store_true", help="raw IPv6 in namespaces (root)")
    parser.add_argument("--dir", help="state directory")
    parser.add_argument("--hks", type=_positive, default=1, help="HKS servers (FreeRADIUS)")
    parser.add_argument(
        "--store", choices=("sqlite", "postgresql"), default="sqlite",
        help="replay state: sqlite (one HKS) or postgresql (shared; needed for --hks > 1)",
    )  # fmt: skip
    parser.add_argument(
        "--udp-radius",
        action="store_true",
        help="AR to HKS over RADIUS/UDP instead of RadSec (RADIUS over TLS, the default)",
    )
    args = parser.parse_args(argv)
    if args.scenario is not None and (args.hks != 1 or args.store != "sqlite"):
        parser.error("a scenario file runs with one HKS: no --hks or --store")
    if args.scenario is not None and args.command != "run":
        parser.error("only `run` takes a scenario file")
    try:
        if args.scenario is not None:
            return cmd_scenario(args)
        return {"run": cmd_run, "up": cmd_up, "down": cmd_down}[args.command](args)
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
