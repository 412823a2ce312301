"""hkp-ar's configuration file: INI sections shaped like FreeRADIUS's proxy.conf
(`home_server`, `realm`), read with configparser, validated whole at start.

Every error is a ConfigError naming the section, the setting and what to put there.
docs/ar.md documents every setting; ar_proxy/hkp-ar.conf.example shows them all.
"""

from __future__ import annotations

import configparser
import dataclasses
import ipaddress
import os
from dataclasses import dataclass, field

from hkp_radius.ar.admission import AdmissionConfig
from hkp_radius.ar.config import ARConfig, NullCoA
from hkp_radius.constants import CODE_POINT_SETTINGS, HK_MAX_LIFETIME, CodePoints
from hkp_radius.errors import ConfigError
from hkp_support.paths import RADDB_SOURCE

DEFAULT_UDP_PORT = 54135  # PROFILE P9
DEFAULT_RADIUS_PORT = 1812
DEFAULT_RADSEC_PORT = 2083  # RFC 6614 §2.1
RADSEC_SECRET = "radsec"  # noqa: S105 - RFC 6614 §2.3: a well-known value
DEFAULT_KEEPALIVE = 30.0  # Status-Server on an idle RadSec connection (RFC 3539 Tw)
PROTOCOLS = ("udp", "tls")
DEFAULT_CONTROL_MODE = 0o600  # the daemon's user only; 0660 adds its group
DEFAULT_METRICS_PORT = 9841  # an unassigned port near the exporters' 9100-9999 range
PACKAGED_DICTIONARY = RADDB_SOURCE / "dictionary.pyrad"
# Margin of the role's own deadline over the slowest realm's retry budget.
DEADLINE_MARGIN = 5.0
COA_MODES = ("neighbour", "static", "permissive")
# Linux neighbour states (include/uapi/linux/neighbour.h) that show a live neighbour.
NEIGHBOUR_STATES = {
    "incomplete": 0x01,
    "reachable": 0x02,
    "stale": 0x04,
    "delay": 0x08,
    "probe": 0x10,
    "failed": 0x20,
    "noarp": 0x40,
    "permanent": 0x80,
}
DEFAULT_NEIGHBOUR_STATES = "reachable stale delay probe permanent noarp"
LOG_LEVELS = ("debug", "info", "warning", "error")
# [realm] type (FreeRADIUS's home_server_pool types; docs/ar.md "Pools").
POOL_TYPES = ("fail-over", "load-balance", "keyed-balance")
STATUS_CHECKS = ("none", "status-server")
# Exchange lines without a key per [admission] summary_interval; the rest are counted
# in one summary line (every issued or verified key keeps its line).
DEFAULT_EXCHANGE_LINES = 20
# UDP receive queues, one per group of source /64s (ar_proxy.steering): a flood from one
# /64 shares its queue with 1/16 of the other /64s' MNs. 1: one socket, no steering.
DEFAULT_UDP_QUEUES = 16

KNOWN = {
    "ar": {"address", "nas_identifier", "nas_ip_address", "nas_ipv6_address", "netns",
           "key_store", "dictionary"},
    "udp": {"enabled", "listen", "port", "queues"},
    "raw": {"enabled", "listen"},
    "policy": {"require_timestamp", "accept_null_coa", "default_lifetime", "max_lifetime",
               "response_cache_time", "retrans_rate", "trans_rate", "timestamp_window",
               "max_records", "hks_deadline", "max_keys_per_nai"},
    "admission": {"enabled", "source_rate", "source_burst", "nai_rate", "nai_burst",
                  "max_in_flight", "reserved_for_known", "known_time", "max_tracked",
                  "summary_interval", "exchange_lines"},
    "coa_validation": {"mode", "static_table", "neighbour_states", "check_timeout",
                       "match_source"},
    "log": {"level", "file"},
    "control": {"socket", "mode"},
    "metrics": {"enabled", "listen", "port"},
    "code_points": set(CODE_POINT_SETTINGS),
    "home_server": {"ipaddr", "port", "secret", "response_window", "retries",
                    "revive_interval", "status_check", "check_interval", "check_timeout",
                    "num_answers_to_alive", "proto", "server_name"},
    "tls": {"ca_file", "certificate_file", "private_key_file", "server_name",
            "keepalive_interval"},
    "realm": {"home_servers", "type"},
}  # fmt: skip


@dataclass(frozen=True)
class TlsSettings:
    """[tls]: RadSec (RFC 6614) to the `proto = tls` home servers (ar_proxy/radsec.py)."""

    ca_file: str  # the CA(s) the HKS's certificate must chain to
    certificate_file: str  # this AR's client certificate (RFC 6614 §2.3: mutual)
    private_key_file: str = field(repr=False)
    server_name: str | None = None  # the name to check; None: the home server's ipaddr
    keepalive_interval: float = DEFAULT_KEEPALIVE


@dataclass(frozen=True)
class HomeServer:
    name: str
    host: str
    port: int
    secret: bytes = field(repr=False)
    response_window: float = 1.0  # seconds to wait for each (re)transmission
    retries: int = 2  # retransmissions after the first send
    revive_interval: float = 30.0  # a silent server is tried last for this long
    # status-server: a dead server gets no requests until it has answered
    # num_answers_to_alive Status-Server probes, one every check_interval (ar_proxy/pools.py)
    status_check: str = "none"
    check_interval: float = 5.0
    check_timeout: float = 2.0
    num_answers_to_alive: int = 3
    proto: str = "udp"  # or "tls": RadSec, no retransmission (one send, the budget's wait)
    tls: TlsSettings | None = None  # with proto = tls

    @property
    def budget(self) -> float:
        return self.response_window * (self.retries + 1)


@dataclass(frozen=True)
class Realm:
    name: str  # lower case; DEFAULT and NULL as in FreeRADIUS's proxy.conf
    servers: tuple[HomeServer, ...]
    type: str = "fail-over"  # POOL_TYPES

    @property
    def budget(self) -> float:
        return sum(server.budget for server in self.servers)


@dataclass(frozen=True)
class DaemonConfig:
    ar_address: bytes
    nas_identifier: str
    nas_ip_address: str | None
    nas_ipv6_address: str | None
    netns: str | None
    key_store: str
    dictionary: str
    udp_enabled: bool
    udp_listen: str
    udp_port: int
    raw_enabled: bool
    raw_listen: str
    coa_mode: str
    static_table: str | None
    neighbour_states: int
    match_source: bool
    log_level: str
    log_file: str | None
    realms: dict[str, Realm]
    role: ARConfig
    source: str = ""
    control_socket: str | None = None  # `hkp-ar status`/`keys`; None: no control socket
    control_mode: int = DEFAULT_CONTROL_MODE
    metrics_enabled: bool = False
    metrics_listen: str = "127.0.0.1"
    metrics_port: int = DEFAULT_METRICS_PORT
    # Issue 15 ([admission]): None when enabled = no; see docs/ar.md.
    admission: AdmissionConfig | None = field(default_factory=AdmissionConfig)
    udp_queues: int = DEFAULT_UDP_QUEUES  # receive queues steered by source (steering.py)
    exchange_lines: int = DEFAULT_EXCHANGE_LINES

    @property
    def ar_address_text(self) -> str:
        return str(ipaddress.IPv6Address(self.ar_address))

    def realm_for(self, nai: bytes) -> Realm | None:
        """FreeRADIUS's realm module (suffix): the part after the last '@'; a NAI without
        one is realm NULL; a realm without a section falls back to DEFAULT."""
        text = nai.decode("utf-8", "replace")
        name = text.rpartition("@")[2].lower() if "@" in text else "null"
        return self.realms.get(name) or self.realms.get("default")


class _Reader:
    """Typed access to one section, with errors that name the setting."""

    def __init__(self, parser: configparser.RawConfigParser, section: str, source: str) -> None:
        self.section = section
        self.items = dict(parser.items(section)) if parser.has_section(section) else {}
        self.where = f"{source}: [{section}]"
        known = KNOWN[section.split()[0]]
        unknown = sorted(set(self.items) - known)
        if unknown:
            raise ConfigError(
                f"{self.where}: unknown setting {unknown[0]!r}; known settings are "
                f"{', '.join(sorted(known))}"
            )

    def fail(self, key: str, what: str) -> ConfigError:
        return ConfigError(f"{self.where} {key} = {self.items.get(key, '')!r}: {what}")

    def text(self, key: str, default: str | None = None) -> str | None:
        value = self.items.get(key, "").strip()
        return value if value else default

    def required(self, key: str, what: str) -> str:
        value = self.text(key)
        if value is None:
            raise ConfigError(f"{self.where}: {key} is required ({what})")
        return value

    def boolean(self, key: str, default: bool) -> bool:
        value = self.text(key)
        if value is None:
            return default
        lowered = value.lower()
        if lowered in ("yes", "true", "on", "1"):
            return True
        if lowered in ("no", "false", "off", "0"):
            return False
        raise self.fail(key, "write yes or no")

    def number(self, key: str, default: float, low: float, high: float) -> float:
        value = self.text(key)
        if value is None:
            return default
        try:
            number = float(value)
        except ValueError:
            raise self.fail(key, f"write a number of seconds from {low} to {high}") from None
        if not low <= number <= high:
            raise self.fail(key, f"must be from {low} to {high}")
        return number

    def integer(self, key: str, default: int, low: int, high: int) -> int:
        value = self.text(key)
        if value is None:
            return default
        try:
            number = int(value, 0)
        except ValueError:
            raise self.fail(key, f"write a whole number from {low} to {high}") from None
        if not low <= number <= high:
            raise self.fail(key, f"must be from {low} to {high}")
        return number

    def choice(self, key: str, default: str, choices: tuple[str, ...]) -> str:
        value = (self.text(key) or default).lower()
        if value not in choices:
            raise self.fail(key, f"write one of {', '.join(choices)}")
        return value

    def ip(self, key: str, default: str | None, version: int | None = None) -> str | None:
        value = self.text(key, default)
        if value is None:
            return None
        try:
            address = ipaddress.ip_address(value)
        except ValueError:
            raise self.fail(key, "write an IP address (no brackets, no port)") from None
        if version is not None and address.version != version:
            raise self.fail(key, f"write an IPv{version} address")
        return str(address)


def load_config(path: str | os.PathLike[str]) -> DaemonConfig:
    source = str(path)
    parser = configparser.RawConfigParser(inline_comment_prefixes=(";", "#"))
    try:
        with open(path, encoding="utf-8") as handle:
            parser.read_file(handle)
    except OSError as exc:
        raise ConfigError(f"{source}: cannot read the configuration file: {exc.strerror}") from None
    except configparser.Error as exc:
        raise ConfigError(f"{source}: not an INI file: {exc.message}") from None
    return parse_config(parser, source)


def parse_config(parser: configparser.RawConfigParser, source: str) -> DaemonConfig:
    for section in parser.sections():
        if section.split()[0] not in KNOWN:
            raise ConfigError(
                f"{source}: unknown section [{section}]; known are [ar], [udp], [raw], "
                "[policy], [admission], [coa_validation], [log], [control], [metrics], "
                "[code_points], [tls], "
                "[home_server NAME], "
                "[realm NAME]"
            )
    ar = _Reader(parser, "ar", source)
    address = ar.ip("address", None, 6)
    if address is None:
        raise ConfigError(
            f"{source}: [ar] address is required (the AR's IPv6 address as the MNs see it, "
            "the AR-ID of PROFILE P4/P9)"
        )
    dictionary = ar.text("dictionary", str(PACKAGED_DICTIONARY)) or ""
    if not os.path.isfile(dictionary):
        raise ar.fail("dictionary", "no such file (the pyrad dictionary, raddb/dictionary.pyrad)")
    key_store = ar.required("key_store", "a path for the SQLite key database")
    if not os.path.isdir(os.path.dirname(os.path.abspath(key_store))):
        raise ar.fail("key_store", "its directory does not exist")

    udp = _Reader(parser, "udp", source)
    raw = _Reader(parser, "raw", source)
    udp_enabled = udp.boolean("enabled", True)
    raw_enabled = raw.boolean("enabled", False)
    if not udp_enabled and not raw_enabled:
        raise ConfigError(f"{source}: enable [udp] or [raw] (enabled = yes), or both")

    coa = _Reader(parser, "coa_validation", source)
    mode = (coa.text("mode", "neighbour") or "").lower()
    if mode not in COA_MODES:
        raise coa.fail("mode", f"write one of {', '.join(COA_MODES)}")
    static_table = coa.text("static_table")
    if mode == "static":
        if static_table is None:
            raise ConfigError(
                f"{source}: [coa_validation] static_table is required with mode = static"
            )
        if not os.path.isfile(static_table):
            raise coa.fail("static_table", "no such file")
    states = 0
    for word in (coa.text("neighbour_states", DEFAULT_NEIGHBOUR_STATES) or "").lower().split():
        if word not in NEIGHBOUR_STATES:
            raise coa.fail(
                "neighbour_states", f"{word!r} is not one of {', '.join(NEIGHBOUR_STATES)}"
            )
        states |= NEIGHBOUR_STATES[word]

    log = _Reader(parser, "log", source)
    level = (log.text("level", "info") or "").lower()
    if level not in LOG_LEVELS:
        raise log.fail("level", f"write one of {', '.join(LOG_LEVELS)}")

    control = _Reader(parser, "control", source)
    control_socket = control.text("socket")
    if control_socket is not None and not os.path.isdir(
        os.path.dirname(os.path.abspath(control_socket))
    ):
        raise control.fail("socket", "its directory does not exist")
    mode_text = control.text("mode", "0600") or "0600"
    try:
        control_mode = int(mode_text.removeprefix("0o"), 8)
    except ValueError:
        raise control.fail("mode", "write an octal file mode: 0600 or 0660") from None
    if control_mode & ~0o770 or not control_mode & 0o600 == 0o600:
        raise control.fail("mode", "the owner needs rw and others no access: write 0600 or 0660")
    metrics = _Reader(parser, "metrics", source)

    realms = _realms(parser, source)
    budget = max(realm.budget for realm in realms.values())
    policy = _Reader(parser, "policy", source)
    hks_deadline = policy.number("hks_deadline", budget + DEADLINE_MARGIN, 0.1, 3600)
    if hks_deadline <= budget:
        raise policy.fail(
            "hks_deadline",
            f"must exceed the slowest realm's retry budget of {budget:g} s "
            "(servers x (retries + 1) x response_window)",
        )
    role_default = ARConfig()  # the role's defaults are the daemon's (docs/ar.md)
    null_coa = (policy.text("accept_null_coa", role_default.null_coa.value) or "").lower()
    null_coa = {"true": "yes", "on": "yes", "1": "yes", "false": "no", "off": "no", "0": "no"}.get(
        null_coa, null_coa
    )
    if null_coa not in {p.value for p in NullCoA}:
        raise policy.fail("accept_null_coa", "write refresh (§6.5 refreshes only), no or yes")
    try:
        role = ARConfig(
            require_timestamp=policy.boolean("require_timestamp", role_default.require_timestamp),
            null_coa=NullCoA(null_coa),
            default_lifetime=policy.integer(
                "default_lifetime", role_default.default_lifetime, 1, HK_MAX_LIFETIME
            ),
            max_lifetime=policy.integer(
                "max_lifetime", role_default.max_lifetime, 1, HK_MAX_LIFETIME
            ),
            response_cache_time=policy.number(
                "response_cache_time", role_default.response_cache_time, 0.01, 60
            ),
            retrans_rate=policy.number("retrans_rate", role_default.retrans_rate, 0.01, 10000),
            trans_rate=policy.number("trans_rate", role_default.trans_rate, 0.01, 10000),
            timestamp_window=policy.number(
                "timestamp_window", role_default.timestamp_window, 0.1, 3600
            ),
            coa_check_timeout=coa.number("check_timeout", role_default.coa_check_timeout, 0.01, 60),
            hks_deadline=hks_deadline,
            max_records=policy.integer("max_records", role_default.max_records, 1, 1_000_000),
            max_keys_per_nai=policy.integer(
                "max_keys_per_nai", role_default.max_keys_per_nai, 1, 1000
            ),
            code_points=_code_points(parser, source),
        )
    except ConfigError as exc:
        if str(exc).startswith(source):  # a setting's own error names it already
            raise
        raise ConfigError(f"{source}: [policy] {exc}") from None
    admission_reader = _Reader(parser, "admission", source)
    admission = _admission(admission_reader)
    return DaemonConfig(
        admission=admission,
        exchange_lines=admission_reader.integer(
            "exchange_lines", DEFAULT_EXCHANGE_LINES, 0, 1_000_000
        ),
        ar_address=ipaddress.IPv6Address(address).packed,
        nas_identifier=ar.text("nas_identifier", "hkp-ar") or "hkp-ar",
        nas_ip_address=ar.ip("nas_ip_address", None, 4),
        nas_ipv6_address=ar.ip("nas_ipv6_address", None, 6),
        netns=ar.text("netns"),
        key_store=key_store,
        dictionary=dictionary,
        udp_enabled=udp_enabled,
        udp_listen=udp.ip("listen", "::") or "::",
        udp_port=udp.integer("port", DEFAULT_UDP_PORT, 0, 65535),
        udp_queues=udp.integer("queues", DEFAULT_UDP_QUEUES, 1, 64),
        raw_enabled=raw_enabled,
        raw_listen=raw.ip("listen", "::", 6) or "::",
        coa_mode=mode,
        static_table=static_table,
        neighbour_states=states,
        match_source=coa.boolean("match_source", True),
        log_level=level,
        log_file=log.text("file"),
        realms=realms,
        role=role,
        source=source,
        control_socket=control_socket,
        control_mode=control_mode,
        metrics_enabled=metrics.boolean("enabled", False),
        metrics_listen=metrics.ip("listen", "127.0.0.1") or "127.0.0.1",
        metrics_port=metrics.integer("port", DEFAULT_METRICS_PORT, 0, 65535),
    )


def _admission(reader: _Reader) -> AdmissionConfig | None:
    """[admission] (issue 15, docs/ar.md): the role's admission control limits."""
    if not reader.boolean("enabled", True):
        return None
    d = AdmissionConfig()
    try:
        return AdmissionConfig(
            source_rate=reader.number("source_rate", d.source_rate, 0.001, 1e6),
            source_burst=reader.number("source_burst", d.source_burst, 1, 1e6),
            nai_rate=reader.number("nai_rate", d.nai_rate, 0.001, 1e6),
            nai_burst=reader.number("nai_burst", d.nai_burst, 1, 1e6),
            max_in_flight=reader.integer("max_in_flight", d.max_in_flight, 1, 1_000_000),
            reserved_for_known=reader.integer(
                "reserved_for_known", d.reserved_for_known, 0, 1_000_000
            ),
            known_time=reader.number("known_time", d.known_time, 1, 86400 * 7),
            max_tracked=reader.integer("max_tracked", d.max_tracked, 16, 10_000_000),
            summary_interval=reader.number("summary_interval", d.summary_interval, 0.1, 86400),
        )
    except ConfigError as exc:
        raise ConfigError(f"{reader.where}: {exc}") from None


def _code_points(parser: configparser.RawConfigParser, source: str) -> CodePoints:
    section = _Reader(parser, "code_points", source)
    values = {
        field_name: section.integer(item, getattr(CodePoints(), field_name), 0, 255)
        for item, field_name in CODE_POINT_SETTINGS.items()
    }
    try:
        return CodePoints(**values)
    except ConfigError as exc:
        raise ConfigError(f"{source}: [code_points] {exc}") from None


def _tls(parser: configparser.RawConfigParser, source: str) -> TlsSettings | None:
    """[tls], its files checked now: a daemon that cannot load them would refuse every
    RadSec connection later. Local import: only a RadSec AR needs ssl."""
    import ssl

    if not parser.has_section("tls"):
        return None
    reader = _Reader(parser, "tls", source)
    ca = reader.required("ca_file", "the CA certificate(s), PEM, the HKS's must chain to")
    certificate = reader.required("certificate_file", "this AR's client certificate, PEM")
    key = reader.required("private_key_file", "the client certificate's private key, PEM")
    for setting, path in (("ca_file", ca), ("certificate_file", certificate),
                          ("private_key_file", key)):  # fmt: skip
        if not os.path.isfile(path):
            raise reader.fail(setting, "no such file")
    mode = os.stat(key).st_mode & 0o777
    if mode & 0o077:
        raise reader.fail("private_key_file", f"readable by others (mode {mode:04o}): chmod 600 it")
    try:
        ssl.create_default_context(cafile=ca)
    except (OSError, ssl.SSLError) as exc:
        raise reader.fail("ca_file", f"not a PEM CA certificate: {exc}") from None
    try:
        ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT).load_cert_chain(certificate, key)
    except (OSError, ssl.SSLError) as exc:
        raise reader.fail(
            "certificate_file", f"cannot load it with private_key_file {key!r}: {exc}"
        ) from None
    return TlsSettings(
        ca_file=ca,
        certificate_file=certificate,
        private_key_file=key,
        server_name=reader.text("server_name"),
        keepalive_interval=reader.number("keepalive_interval", DEFAULT_KEEPALIVE, 1, 3600),
    )


def _realms(parser: configparser.RawConfigParser, source: str) -> dict[str, Realm]:
    servers: dict[str, HomeServer] = {}
    tls = _tls(parser, source)
    for section in parser.sections():
        kind, _, name = section.partition(" ")
        if kind != "home_server":
            continue
        if not name.strip():
            raise ConfigError(f"{source}: [home_server] needs a name: [home_server hks1]")
        reader = _Reader(parser, section, source)
        proto = (reader.text("proto", "udp") or "").lower()
        if proto not in PROTOCOLS:
            raise reader.fail("proto", "write udp (RADIUS over UDP) or tls (RadSec, RFC 6614)")
        server_tls = None
        if proto == "tls":
            if tls is None:
                raise ConfigError(
                    f"{reader.where}: proto = tls needs a [tls] section (ca_file, "
                    "certificate_file, private_key_file, server_name)"
                )
            name_override = reader.text("server_name")
            server_tls = dataclasses.replace(tls, server_name=name_override or tls.server_name)
            secret = reader.text("secret", RADSEC_SECRET) or RADSEC_SECRET
        else:
            secret = reader.required("secret", "the RADIUS shared secret with this HKS")
        default_port = DEFAULT_RADSEC_PORT if proto == "tls" else DEFAULT_RADIUS_PORT
        servers[name.strip()] = HomeServer(
            name=name.strip(),
            host=reader.ip("ipaddr", None) or _missing(reader, "ipaddr", "the HKS's IP address"),
            port=reader.integer("port", default_port, 1, 65535),
            secret=secret.encode("utf-8"),
            proto=proto,
            tls=server_tls,
            response_window=reader.number("response_window", HomeServer.response_window, 0.01, 60),
            retries=reader.integer("retries", HomeServer.retries, 0, 10),
            revive_interval=reader.number("revive_interval", HomeServer.revive_interval, 0, 86400),
            status_check=reader.choice("status_check", HomeServer.status_check, STATUS_CHECKS),
            check_interval=reader.number("check_interval", HomeServer.check_interval, 0.01, 3600),
            check_timeout=reader.number("check_timeout", HomeServer.check_timeout, 0.01, 60),
            num_answers_to_alive=reader.integer(
                "num_answers_to_alive", HomeServer.num_answers_to_alive, 1, 100
            ),
        )
    realms: dict[str, Realm] = {}
    for section in parser.sections():
        kind, _, name = section.partition(" ")
        if kind != "realm":
            continue
        if not name.strip():
            raise ConfigError(
                f"{source}: [realm] needs a name: [realm example.net], DEFAULT or NULL"
            )
        reader = _Reader(parser, section, source)
        names = reader.required("home_servers", "home_server names, tried in order") or ""
        group = []
        for server in names.replace(",", " ").split():
            if server not in servers:
                raise reader.fail("home_servers", f"no [home_server {server}] section")
            group.append(servers[server])
        pool_type = reader.choice("type", "fail-over", POOL_TYPES)
        realms[name.strip().lower()] = Realm(name.strip().lower(), tuple(group), pool_type)
    if not realms:
        raise ConfigError(
            f"{source}: no [realm NAME] section: add one (or [realm DEFAULT]) with "
            "home_servers = ... naming [home_server NAME] sections"
        )
    return realms


def _missing(reader: _Reader, key: str, what: str) -> str:
    raise ConfigError(f"{reader.where}: {key} is required ({what})")
