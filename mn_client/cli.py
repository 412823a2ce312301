"""`hkp-mn`: the MN side of draft-vidya-mipshop-handover-keys-aaa-04 (PROFILE v1).

    hkp-mn request --nai alice@example.net --hmk-file alice.hmk --ar 2001:db8::1
    hkp-mn verify  ...          # returning to an AR: V flag with the held key (§6.2.3)
    hkp-mn refresh ...          # indirect, NULL CoA (§6.5)
    hkp-mn keys [--show-key]    # held keys; the HK only with --show-key
    hkp-mn load -n 1000 -c 50   # load generator: throughput and latency figures
    hkp-mn request --lab        # identity and AR from a running `hkp-lab up`

The HMK comes from --hmk-file (0x<hex> as the users file writes it, or bare hex) or
$HKP_MN_HMK (the same), never from the command line, which other users can read. A direct
request binds the key to the MN's own address (the source address the AR sees) unless
--coa names another; a refresh always sends the NULL CoA (§6.5).
"""

from __future__ import annotations

import argparse
import ipaddress
import json
import math
import os
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from hkp_radius.constants import HKEY_REQ_TOUT, N_HO_KEYTRIES, PRF, MacAlgorithm
from hkp_radius.errors import HKPError
from hkp_radius.mn import Event, Kind, MNConfig, MobileNode, VerifyUnanswered, format_address

from .describe import describe_event
from .driver import system_random
from .hmk import HmkFileError, parse_hmk, read_hmk_file
from .keyfile import KeyFile, KeyFileError, default_path
from .load import progress_line, run_load
from .session import exchange_deadline, run_exchange, starter
from .transport import (
    UDP_DEFAULT_PORT,
    RawIPv6Transport,
    Transport,
    UdpTransport,
    parse_endpoint,
)

EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2


class UsageError(Exception):
    pass


def _address(text: str, what: str) -> bytes:
    try:
        return ipaddress.IPv6Address(text.split("%")[0]).packed
    except ValueError:
        raise UsageError(f"{what} {text!r} is not an IPv6 address") from None


def _algorithm(text: str, kind: type[PRF] | type[MacAlgorithm]) -> int:
    key = text.strip().upper().replace("-", "_")
    if key.isascii() and key.isdigit() and int(key) in {m.value for m in kind}:
        return int(key)
    if key in kind.__members__:
        return int(kind.__members__[key])
    raise UsageError(f"unknown {kind.__name__} {text!r}: use 1, 2, HMAC-SHA1 or HMAC-SHA256")


def _read_hmk(path: str | None) -> bytes:
    if path:
        return read_hmk_file(path)
    env = os.environ.get("HKP_MN_HMK")
    if env:
        return parse_hmk(env, "$HKP_MN_HMK")
    raise UsageError("no HMK: give --hmk-file PATH or set $HKP_MN_HMK (0x<hex> or hex)")


def lab_endpoints(directory: str | None) -> dict[str, Any]:
    from hkp_support.labstate import endpoints_path

    path = endpoints_path(directory)
    try:
        data: dict[str, Any] = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise UsageError(f"no running lab at {path} ({exc}): start one with `hkp-lab up`") from None
    return data


class Target:
    """Who we talk to: AR-ID, transport and the identities to use."""

    def __init__(self, args: argparse.Namespace) -> None:
        lab = lab_endpoints(args.lab_dir) if args.lab else None
        self.identities: list[tuple[bytes, bytes]] = []
        if lab is not None:
            # `load` spreads over the lab's load identities (one MN sustains at most
            # 256 Message IDs per MESSAGE_ID_REUSE_GUARD with one AR, and -c needs as many).
            pool = lab["identities"]
            if args.command == "load" and not args.nai:
                pool = lab.get("load_identities") or pool
            elif args.nai:  # any of the lab's identities by name
                pool = [*pool, *lab.get("load_identities", [])]
            for item in pool:
                if item.get("prohibited") and item["nai"] != args.nai:
                    continue  # the lab's HKS refuses this one by design
                self.identities.append((item["nai"].encode(), bytes.fromhex(item["hmk"])))
            if args.nai:
                chosen = [i for i in self.identities if i[0] == args.nai.encode()]
                if not chosen:
                    raise UsageError(f"the lab has no identity {args.nai!r}")
                self.identities = chosen
        elif args.nai:
            self.identities = [(args.nai.encode("utf-8"), _read_hmk(args.hmk_file))]
        ar_text = args.ar or (lab["ar"]["ar_id"] if lab else None)
        if not ar_text:
            raise UsageError("no AR: give --ar AR-ID (the AR's IPv6 address) or --lab")
        self.ar_id = _address(ar_text, "--ar")
        # A --netns lab: run as `ip netns exec <mn.netns> hkp-mn ... --lab`.
        self.raw = bool(args.raw) or bool(lab and lab["ar"]["transport"] == "raw-ipv6")
        if args.udp:
            try:
                self.endpoint = parse_endpoint(args.udp)
            except ValueError as exc:
                raise UsageError(f"--udp: {exc}") from None
        elif lab is not None and lab["ar"]["port"] is not None:
            self.endpoint = (lab["ar"]["address"], int(lab["ar"]["port"]))
        else:
            self.endpoint = (format_address(self.ar_id), UDP_DEFAULT_PORT)
        self.source = args.source

    def transport(self) -> Transport:
        if self.raw:
            try:
                return RawIPv6Transport(self.source)
            except PermissionError:
                raise UsageError("raw IPv6 needs root (CAP_NET_RAW): use UDP instead") from None
            except OSError as exc:  # --source not an address of this host, or not IPv6
                raise UsageError(f"--source {self.source!r}: cannot bind: {exc}") from None
        try:
            return UdpTransport({self.ar_id: self.endpoint})
        except OSError as exc:  # getaddrinfo: a host name that does not resolve
            raise UsageError(f"--udp: cannot reach {self.endpoint[0]!r}: {exc}") from None

    def describe(self) -> str:
        if self.raw:
            return f"AR {format_address(self.ar_id)} over raw IPv6"
        host, port = self.endpoint
        return f"AR {format_address(self.ar_id)} over UDP {host} port {port}"


def _config(args: argparse.Namespace, nai: bytes, hmk: bytes) -> MNConfig:
    return MNConfig(
        nai=nai,
        hmk=hmk,
        prf=_algorithm(args.prf, PRF),
        mac_algorithm=_algorithm(args.mac_alg, MacAlgorithm),
        use_timestamps=not args.no_timestamp,
        request_timeout=args.timeout,
        max_retransmissions=args.tries,
    )


def _print(args: argparse.Namespace, text: str) -> None:
    if not args.json:
        print(text, flush=True)


def cmd_exchange(args: argparse.Namespace) -> int:
    target = Target(args)
    if len(target.identities) != 1:
        if not target.identities:
            raise UsageError("no identity: give --nai NAI (and --hmk-file), or --lab")
        target.identities = target.identities[:1]
    nai, hmk = target.identities[0]
    keyfile = KeyFile.load(Path(args.keys))
    node = MobileNode(_config(args, nai, hmk), system_random, keyfile.keys)
    keyfile.restore(node)
    transport = target.transport()
    try:
        coa = _coa(args, transport, target.ar_id)
        start = starter(node, Kind(args.command), target.ar_id, coa)
        _print(args, f"{nai.decode()} {args.command} with {target.describe()}")
        result = run_exchange(node, transport, start, lambda e: _print(args, describe_event(e)))
    finally:
        transport.close()
    keyfile.remember(node)
    keyfile.save()
    final = result.final
    if final is None:  # the driver's deadline passed first
        waited = exchange_deadline(node.config)
        print(f"hkp-mn: no outcome within {waited:.1f} s; stopped waiting", file=sys.stderr)
    if args.json:
        print(json.dumps(_result_json(result.events, final), indent=1))
    return EXIT_OK if result.ok else EXIT_FAILED


def _coa(args: argparse.Namespace, transport: Transport, ar_id: bytes) -> bytes:
    """--coa, else the MN's own address towards the AR (the secure default, §7.4)."""
    if args.coa:
        return _address(args.coa, "--coa")
    try:
        return transport.local_address(ar_id)
    except OSError as exc:
        raise UsageError(
            f"cannot find our own address towards the AR ({exc}): give --coa"
        ) from None


LOAD_COA_PREFIX = ipaddress.IPv6Network("2001:db8:10ad::/64")  # RFC 3849 documentation


def _load_coas(
    args: argparse.Namespace, transport: Transport, ar_id: bytes, count: int
) -> list[bytes]:
    """One Key CoA per load identity (§7.4: an AR refuses a CoA bound to another MN):
    --coa (or our own address) for one identity; for more, --coa + i, or without --coa
    addresses of 2001:db8:10ad::/64, which only a permissive AR (the lab's) accepts."""
    if count == 1:
        return [_coa(args, transport, ar_id)]
    base = (
        ipaddress.IPv6Address(_coa(args, transport, ar_id))
        if args.coa
        else (LOAD_COA_PREFIX.network_address)
    )
    return [(base + 1 + i).packed for i in range(count)]


def _result_json(events: list[Event], final: Any) -> dict[str, Any]:
    out: dict[str, Any] = {"ok": False, "events": [describe_event(e) for e in events]}
    # §6.2.3: a verify that went unanswered and became a full MN-HKS request
    out["fell_back"] = any(isinstance(e, VerifyUnanswered) for e in events)
    if final is not None and hasattr(final, "key"):
        key = final.key
        out.update(
            ok=True,
            verified=final.verified,
            spi=key.spi,
            lifetime=key.lifetime,
            ar_id=format_address(key.ar_id),
            elapsed_ms=round(final.elapsed * 1000, 3),
        )
    elif final is not None:
        out.update(reason=final.reason, last_status=final.last_status)
    return out


def cmd_keys(args: argparse.Namespace) -> int:
    keyfile = KeyFile.load(Path(args.keys))
    now = time.time()  # held keys' expiry is wall time (persisted)
    rows = []
    for key in keyfile.keys.all():
        row: dict[str, Any] = {
            "nai": key.nai.decode("utf-8", "replace"),
            "ar_id": format_address(key.ar_id),
            "spi": key.spi,
            "lifetime": key.lifetime,
            "expires_in": round(key.remaining(now)),
            "care_of_address": format_address(key.care_of_address),
        }
        if args.show_key:
            row["hk"] = key.hk.hex()
        rows.append(row)
    if args.json:
        print(json.dumps(rows, indent=1))
    elif not rows:
        print(f"no keys held (key file {args.keys})")
    for row in [] if args.json else rows:
        state = "expired" if row["expires_in"] <= 0 else f"{row['expires_in']} s left"
        line = (
            f"{row['nai']}  AR {row['ar_id']}  SPI {row['spi']}  "
            f"lifetime {row['lifetime']} s ({state})"
        )
        print(line + (f"  HK {row['hk']}" if args.show_key else ""))
    return EXIT_OK


def cmd_load(args: argparse.Namespace) -> int:
    target = Target(args)
    if not target.identities:
        raise UsageError("no identity: give --nai NAI (and --hmk-file), or --lab")
    configs = [_config(args, nai, hmk) for nai, hmk in target.identities]
    probe = target.transport()
    try:
        coas = _load_coas(args, probe, target.ar_id, len(configs))
    finally:
        probe.close()

    def progress(snapshot: dict[str, Any]) -> None:
        print(progress_line(snapshot), file=sys.stderr, flush=True)

    if not args.json:
        print(f"load: {args.n} requests, {args.c} in flight, {len(configs)} identities, "
              f"{target.describe()}", flush=True)  # fmt: skip
    try:
        result = run_load(
            configs, target.transport, target.ar_id, args.n, args.c, coas,
            per_identity=args.per_identity,
            progress=progress if args.progress > 0 else None,
            progress_interval=args.progress or 1.0,
        )  # fmt: skip
    except ValueError as exc:  # the identities cannot carry -c
        raise UsageError(f"-c {args.c}: {exc}") from None
    if args.json:
        print(json.dumps(result.as_json(), indent=1))
    else:
        for line in result.lines():
            print(line)
    return EXIT_OK if result.failed == 0 else EXIT_FAILED


def _seconds(text: str) -> float:
    """argparse type of --timeout: seconds above 0."""
    try:
        value = float(text)
    except ValueError:
        value = 0.0
    if not 0 < value < math.inf:  # also NaN
        raise argparse.ArgumentTypeError(f"{text!r}: give a number of seconds above 0")
    return value


def _count(least: int) -> Callable[[str], int]:
    """argparse type: a whole number of at least `least`."""

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            value = least - 1
        if value < least:
            raise argparse.ArgumentTypeError(f"{text!r}: give a whole number, {least} or more")
        return value

    return parse


def build_parser() -> argparse.ArgumentParser:
    common = argparse.ArgumentParser(add_help=False)
    who = common.add_argument_group("identity and AR")
    who.add_argument("--nai", help="the MN's NAI (MN-ID)")
    who.add_argument(
        "--hmk-file", help="file holding the HMK (0x<hex> or bare hex); else $HKP_MN_HMK"
    )
    who.add_argument("--ar", help="AR-ID: the AR's IPv6 address as the MN sees it (P4)")
    who.add_argument("--udp", metavar="HOST[:PORT]", help="AR's UDP endpoint (P9, port 54135)")
    who.add_argument("--raw", action="store_true", help="raw IPv6 Next Header 135 (root)")
    who.add_argument("--source", help="raw IPv6: source address to bind")
    who.add_argument("--lab", action="store_true", help="identity and AR from `hkp-lab up`")
    who.add_argument("--lab-dir", help="lab state dir (default $HKP_LAB_DIR or the lab's)")
    policy = common.add_argument_group("policy")
    policy.add_argument(
        "--coa", help="Key Care-of Address (default: our own address towards the AR)"
    )
    algorithms = "HMAC-SHA1 (1, default) or HMAC-SHA256 (2)"
    policy.add_argument("--prf", default="HMAC-SHA1", help=f"PRF: {algorithms}")
    policy.add_argument("--mac-alg", default="HMAC-SHA1", help=f"MAC algorithm: {algorithms}")
    policy.add_argument("--no-timestamp", action="store_true", help="omit the Timestamp option")
    policy.add_argument(
        "--timeout",
        type=_seconds,
        default=HKEY_REQ_TOUT,
        help=f"HKEY_REQ_TOUT, seconds (default {HKEY_REQ_TOUT:g})",
    )
    policy.add_argument(
        "--tries",
        type=_count(0),
        default=N_HO_KEYTRIES,
        help=f"N_HO_KEYTRIES retransmissions (default {N_HO_KEYTRIES})",
    )
    common.add_argument("--keys", default=str(default_path()), help="key file (mode 0600)")
    common.add_argument("--json", action="store_true", help="machine-readable output")

    parser = argparse.ArgumentParser(prog="hkp-mn", description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    for name, text in (
        ("request", "request a new key from an AR (§6.2.1)"),
        ("verify", "returning to an AR: verify the held key, V flag (§6.2.3)"),
        ("refresh", "refresh a key with an AR indirectly, NULL CoA (§6.5)"),
    ):
        sub.add_parser(name, parents=[common], help=text).set_defaults(func=cmd_exchange)
    keys = sub.add_parser("keys", parents=[common], help="list held keys")
    keys.add_argument("--show-key", action="store_true", help="also print each HK in hex")
    keys.set_defaults(func=cmd_keys)
    load = sub.add_parser("load", parents=[common], help="load generator")
    load.add_argument("-n", type=_count(1), default=1000, help="requests in all")
    load.add_argument("-c", type=_count(1), default=50, help="requests in flight")
    load.add_argument(
        "--per-identity",
        type=_count(1),
        default=1,
        help="exchanges of one identity in flight (default 1: more may reach the HKS "
        "out of timestamp order)",
    )
    load.add_argument(
        "--progress",
        type=float,
        default=5.0,
        metavar="SECONDS",
        help="a progress line on stderr every SECONDS (default 5; 0: none)",
    )
    load.set_defaults(func=cmd_load)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return int(args.func(args))
    except (UsageError, KeyFileError, HmkFileError, HKPError) as exc:
        print(f"hkp-mn: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
