"""`hkp-fuzz`: the command line (docs/fuzzing.md).

Exit status: 0 no anomaly, 1 at least one anomaly (or, for replay and minimize, the
oracle fired), 2 usage errors (bad arguments, unreadable files), 3 the target did not
answer before the run (nothing to fuzz).
"""

from __future__ import annotations

import argparse
import ipaddress
import json
import sys
from collections.abc import Sequence
from pathlib import Path

from mn_client import HmkFileError, parse_endpoint, read_hmk_file

from . import minimize as shrink
from .cases import DEFAULT_AR_ID, DEFAULT_NAI, Case, Setup, cases_for, load_case, save_case
from .radius import load_dictionary
from .runner import Options, Run
from .workers import Digesting, run_workers

EXIT_CLEAN, EXIT_ANOMALY, EXIT_USAGE, EXIT_NO_TARGET = 0, 1, 2, 3
RADIUS_PORT, AR_UDP_PORT = 1812, 54135
# cases in flight: a RADIUS identifier is one octet; the mh target holds a socket each
RADIUS_WINDOW, MH_WINDOW = 256, 4096

EXAMPLES = """examples:
  hkp-fuzz radius 127.0.0.1:1812 --secret testing123 --cases 100000 --out /tmp/fz
  hkp-fuzz radius 127.0.0.1:1812 --secret s --nai mn@example.net --hmk-file mn.hmk \\
      --ar-id 2001:db8::1 --seed 7 --duration 600 --json
  hkp-fuzz mh [::1]:54135 --nai mn@example.net --hmk-file mn.hmk --cases 20000
  hkp-fuzz replay /tmp/fz/anomalies/hang-s1-i42.json --secret testing123
  hkp-fuzz minimize /tmp/fz/anomalies/wrong-key-s1-i7.json --secret testing123
exit status: 0 no anomaly, 1 anomaly found (replay/minimize: the oracle fired),
  2 usage error, 3 target not answering before the run
"""


class UsageError(Exception):
    pass


def _endpoint(text: str, default_port: int) -> tuple[str, int]:
    try:
        host, port = parse_endpoint(text, default_port)
    except (ValueError, OSError) as exc:
        raise UsageError(f"bad HOST:PORT {text!r}: {exc}") from None
    return str(host), int(port)


def _common(parser: argparse.ArgumentParser, *, server_optional: bool = False) -> None:
    nargs = "?" if server_optional else None
    parser.add_argument("server", nargs=nargs, metavar="HOST:PORT")
    parser.add_argument("--secret", help="RADIUS shared secret (radius target)")
    parser.add_argument("--dictionary", help="FreeRADIUS-format dictionary file or directory")
    parser.add_argument("--nai", help=f"the MN's NAI (default {DEFAULT_NAI.decode()})")
    parser.add_argument("--hmk-file", help="the MN's HMK (hkp-mn's formats): crypto-valid cases")
    parser.add_argument("--ar-id", help="the AR's IPv6 address (HKP-AR-Address, HK derivation)")
    parser.add_argument("--timeout", type=float, default=2.0, help="seconds to wait per case")
    parser.add_argument("--probe-timeout", type=float, default=0.5, help="liveness probe, s")
    parser.add_argument("--slow-after", type=float, default=1.0, help="slow oracle floor, s")
    parser.add_argument("--watch-pid", type=int, help="the server's pid: crash oracle, RSS")
    parser.add_argument("--restart-command", help="run after a crash/hang to bring it back")
    parser.add_argument("--json", action="store_true", help="print the JSON report")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="hkp-fuzz",
        description="Seeded fuzzing of RADIUS servers (HKS) and HKP Mobility Header peers (AR).",
        epilog=EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    sub = parser.add_subparsers(dest="command", required=True)
    for target, what in (("radius", "a RADIUS server"), ("mh", "an AR over UDP (P9)")):
        p = sub.add_parser(
            target,
            help=f"fuzz {what}",
            epilog=EXAMPLES,
            formatter_class=argparse.RawDescriptionHelpFormatter,
        )
        _common(p)
        p.add_argument("--seed", type=int, default=1)
        p.add_argument("--cases", type=int, help="number of cases (default 10000)")
        p.add_argument("--duration", type=float, help="run for S seconds instead")
        p.add_argument("--start", type=int, default=0, help="first case index")
        p.add_argument(
            "--window", type=int, default=64, help="cases in flight (radius <= 256, mh <= 4096)"
        )
        p.add_argument("--rate", type=float, help="at most N cases per second")
        p.add_argument("--timestamp", action="store_true", help="a fresh Timestamp option")
        p.add_argument("--watch-rss", type=float, metavar="MIB", help="memory oracle limit")
        p.add_argument("--out", help="keep anomalies and a corpus here")
        p.add_argument("--progress", action="store_true", help="progress on standard error")
        p.add_argument("--dry-run", action="store_true", help="generate only: report digest")
        p.add_argument(
            "--workers", type=int, default=1, help="N processes over adjacent index ranges"
        )
    for name, what in (("replay", "re-send one kept case"), ("minimize", "shrink a kept case")):
        p = sub.add_parser(name, help=what)
        p.add_argument("file", help="a case file from --out DIR/anomalies or corpus")
        _common(p, server_optional=True)
        if name == "minimize":
            p.add_argument("--output", help="where the minimized case goes (FILE.min.json)")
            p.add_argument("--budget", type=int, default=400, help="at most N attempts")
    return parser


def _setup(args: argparse.Namespace, target: str, seed: int, kept: dict[str, object]) -> Setup:
    nai = (
        (args.nai.encode() if args.nai else None)
        or str(kept.get("nai", "")).encode()
        or DEFAULT_NAI
    )
    hmk = None
    if args.hmk_file:
        try:
            hmk = read_hmk_file(args.hmk_file)
        except (HmkFileError, OSError) as exc:
            raise UsageError(f"--hmk-file: {exc}") from None
    ar_id = bytes.fromhex(str(kept["ar_id"])) if kept.get("ar_id") else DEFAULT_AR_ID
    if args.ar_id:
        try:
            ar_id = ipaddress.IPv6Address(args.ar_id).packed
        except ValueError:
            raise UsageError(f"--ar-id {args.ar_id!r} is not an IPv6 address") from None
    try:
        dictionary = load_dictionary(args.dictionary)
    except (OSError, ValueError) as exc:
        raise UsageError(f"--dictionary: {exc}") from None
    timestamp = None
    if getattr(args, "timestamp", False):
        import time

        from hkp_radius.wire import ntp

        timestamp = ntp.to_ntp(time.time())
    return Setup(target, seed, nai, hmk, ar_id, timestamp, dictionary)


def _options(args: argparse.Namespace, target: str, server: str) -> Options:
    host, port = _endpoint(server, RADIUS_PORT if target == "radius" else AR_UDP_PORT)
    if target == "radius" and not args.secret:
        raise UsageError("the radius target needs --secret")
    window = getattr(args, "window", 64)
    most = RADIUS_WINDOW if target == "radius" else MH_WINDOW
    if not 1 <= window <= most:
        raise UsageError(f"--window is 1-{most} for the {target} target")
    out = getattr(args, "out", None)
    return Options(
        host=host,
        port=port,
        secret=(args.secret or "").encode(),
        window=window,
        timeout=args.timeout,
        probe_timeout=args.probe_timeout,
        slow_after=args.slow_after,
        rate=getattr(args, "rate", None),
        duration=getattr(args, "duration", None),
        watch_pid=args.watch_pid,
        watch_rss_mib=getattr(args, "watch_rss", None),
        restart_command=args.restart_command,
        out=Path(out) if out else None,
        progress=getattr(args, "progress", False),
    )


def _print(report: dict[str, object], as_json: bool) -> None:
    if as_json:
        print(json.dumps(report, indent=2, sort_keys=True))
        return
    for key in ("target", "server", "seed", "cases", "rate", "stopped", "cases_digest"):
        if key in report:
            print(f"{key}: {report[key]}")
    print(f"outcomes: {report.get('outcomes')}")
    anomalies = report.get("anomalies") or []
    assert isinstance(anomalies, list)
    print(f"anomalies: {len(anomalies)}")
    for a in anomalies:
        chain = " > ".join(a["chain"]) or "template"
        print(f"  {a['oracle']}: case {a['seed']}/{a['index']} {chain}: {a['detail']}")


def _fuzz(args: argparse.Namespace) -> int:
    target = args.command
    setup = _setup(args, target, args.seed, {})
    options = _options(args, target, args.server)
    count = args.cases if args.cases is not None or args.duration is not None else 10000
    if args.workers < 1:
        raise UsageError("--workers is at least 1")
    if args.workers > 1 and count is None:
        raise UsageError("--workers needs --cases: the workers split a range of indices")
    if args.workers > 1 and options.restart_command:
        raise UsageError("--restart-command works with one worker only")
    cases = Digesting(cases_for(setup, count, args.start))
    if args.dry_run:
        total = sum(1 for _ in cases)
        report: dict[str, object] = {
            "tool": "hkp-fuzz",
            "target": target,
            "seed": args.seed,
            "cases": total,
            "cases_digest": cases.digest.hexdigest(),
        }
        _print(report, args.json)
        return EXIT_CLEAN
    run = Run(setup, options)
    if not run_alive(run):
        print(f"hkp-fuzz: {args.server} does not answer the liveness probe", file=sys.stderr)
        return EXIT_NO_TARGET
    if args.workers > 1:
        assert count is not None
        report = run_workers(setup, options, args.start, count, args.workers)
    else:
        run.run(cases)
        report = run.report(cases.digest.hexdigest())
        report["workers"] = 1
    if options.progress:
        print(file=sys.stderr)
    _print(report, args.json)
    return EXIT_ANOMALY if report["anomalies"] else EXIT_CLEAN


def run_alive(run: Run) -> bool:
    run._open()
    try:
        return run.alive()
    finally:
        run._close()


def _kept(args: argparse.Namespace) -> tuple[Case, dict[str, object], Setup, Options]:
    try:
        case, kept = load_case(Path(args.file))
    except (OSError, ValueError, KeyError) as exc:
        raise UsageError(f"{args.file}: {exc}") from None
    server = args.server or str(kept.get("server", ""))
    if not server:
        raise UsageError("no HOST:PORT given and none in the file")
    setup = _setup(args, case.target, case.seed, kept)
    options = _options(args, case.target, server)
    options.window = 1
    # a kept slow case is judged alone, against the baseline of the run that found it
    options.confirm_slow = False
    baseline = kept.get("baseline_s")
    if isinstance(baseline, (int, float)):
        options.slow_baseline = float(baseline)
    return case, kept, setup, options


def _once(case: Case, setup: Setup, options: Options) -> Run:
    run = Run(setup, options)
    if not run_alive(run) and not run._restart():
        raise UsageError("the target does not answer the liveness probe")
    return run.run([case])


def _replay(args: argparse.Namespace) -> int:
    case, kept, setup, options = _kept(args)
    run = _once(case, setup, options)
    report = run.report(None)
    report["workers"] = 1
    report["expected_oracle"] = kept.get("oracle")
    report["reproduced"] = any(a.oracle == kept.get("oracle") for a in run.anomalies)
    _print(report, args.json)
    return EXIT_ANOMALY if run.anomalies else EXIT_CLEAN


def _minimize(args: argparse.Namespace) -> int:
    case, kept, setup, options = _kept(args)
    oracle = kept.get("oracle")

    def fires(candidate: Case) -> bool:
        return any(a.oracle == oracle for a in _once(candidate, setup, options).anomalies)

    if not fires(case):
        report = {"tool": "hkp-fuzz", "oracle": oracle, "reproduced": False}
        _print(report, args.json)
        return EXIT_CLEAN
    small, attempts = shrink.minimize(case, setup, fires, args.budget)
    output = Path(args.output) if args.output else Path(args.file).with_suffix(".min.json")
    kept = dict(kept)
    kept.update(small.to_json())
    save_case(output, small, {k: v for k, v in kept.items() if k not in small.to_json()})
    report = {
        "tool": "hkp-fuzz",
        "oracle": oracle,
        "reproduced": True,
        "attempts": attempts,
        "size_before": shrink.size(case),
        "size_after": shrink.size(small),
        "output": str(output),
        "chain": small.chain,
    }
    _print(report, args.json)
    return EXIT_ANOMALY


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        if args.command in ("radius", "mh"):
            return _fuzz(args)
        if args.command == "replay":
            return _replay(args)
        return _minimize(args)
    except UsageError as exc:
        print(f"hkp-fuzz: {exc}", file=sys.stderr)
        return EXIT_USAGE
