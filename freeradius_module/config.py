"""The `config { }` section of mods-available/hkp_hks, as rlm_python3 hands it over
(every value a string), turned into an HKSPolicy. Errors name the setting to fix."""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass

from hkp_radius.constants import CODE_POINT_SETTINGS, PRF, CodePoints, MacAlgorithm
from hkp_radius.errors import ConfigError
from hkp_radius.hks.log_summary import DEFAULT_SUMMARY_INTERVAL
from hkp_radius.hks.role import HKSPolicy, parse_algorithm

DEFAULT_REPLAY_DB = "/var/lib/freeradius/hkp_hks_replay.sqlite"
# Where the replay state lives: SQLite (one server, the default) or PostgreSQL (any
# number of servers sharing it, docs/hks.md "Running several HKS servers").
REPLAY_STORES = ("sqlite", "postgresql")

KNOWN_ITEMS = {
    "allowed_prf",
    "required_prf",
    "allowed_mac_algorithms",
    "required_mac_algorithm",
    "require_timestamp",
    "timestamp_window",
    "key_lifetime",
    "hk_length",
    "replay_db",
    "replay_store",
    "replay_postgresql",
    "log_summary_interval",
    "replay_commit",
    *CODE_POINT_SETTINGS,
}
# When an accept's SQLite commit is awaited (docs/hks.md "Replay state durability"):
# inline, in the module call (one fsync per accept: rlm_python3 runs one call at a
# time), or post-auth, by the perl instance hkp_hks_commit_wait (groups of accepts).
REPLAY_COMMITS = ("inline", "post-auth")
# A summary line per hour at most would hide an attack for too long to be useful.
MAX_SUMMARY_INTERVAL = 3600.0
TRUE_WORDS = {"yes", "true", "on", "1"}
FALSE_WORDS = {"no", "false", "off", "0"}


@dataclass(frozen=True)
class ModuleConfig:
    policy: HKSPolicy
    replay_db: str
    log_summary_interval: float = DEFAULT_SUMMARY_INTERVAL
    replay_store: str = "sqlite"
    replay_postgresql: str = ""  # a libpq connection string
    replay_commit: str = "inline"


def _flat(config: Mapping[str, object]) -> dict[str, str]:
    """rlm_python3 gives `config { }` items as strings; subsections become dicts and
    are not ours."""
    flat: dict[str, str] = {}
    for key, value in config.items():
        if isinstance(value, str):
            flat[key] = value.strip()
        elif not isinstance(value, dict):
            raise ConfigError(f"hkp_hks config: item {key!r} is not a string")
    unknown = sorted(set(flat) - KNOWN_ITEMS)
    if unknown:
        raise ConfigError(
            f"hkp_hks config: unknown item(s) {', '.join(unknown)}; "
            f"known are {', '.join(sorted(KNOWN_ITEMS))}"
        )
    return flat


def _boolean(items: Mapping[str, str], key: str, default: bool) -> bool:
    if key not in items:
        return default
    word = items[key].lower()
    if word in TRUE_WORDS:
        return True
    if word in FALSE_WORDS:
        return False
    raise ConfigError(f"hkp_hks config: {key} = {items[key]!r}: use yes or no")


def _number(
    items: Mapping[str, str], key: str, default: float, kind: type[int] | type[float]
) -> float:
    if key not in items:
        return default
    try:
        return kind(items[key])
    except ValueError:
        raise ConfigError(f"hkp_hks config: {key} = {items[key]!r} is not a number") from None


def _algorithms(
    items: Mapping[str, str], key: str, kind: type[enum.IntEnum], default: frozenset[int]
) -> frozenset[int]:
    if key not in items:
        return default
    names = items[key].replace(",", " ").split()
    if not names:
        raise ConfigError(f"hkp_hks config: {key} is empty: name at least one algorithm")
    return frozenset(_named(key, name, kind) for name in names)


def _named(key: str, name: str, kind: type[enum.IntEnum]) -> int:
    try:
        return parse_algorithm(name, kind)
    except ConfigError as exc:
        raise ConfigError(f"hkp_hks config: {key}: {exc}") from None


def parse_module_config(config: Mapping[str, object]) -> ModuleConfig:
    """Build the HKS policy from rlm_python3's `radiusd.config`. Raises ConfigError."""
    items = _flat(config)
    defaults = HKSPolicy()
    code_point_values: dict[str, int] = {}
    for item, field_name in CODE_POINT_SETTINGS.items():
        if item in items:
            code_point_values[field_name] = int(_number(items, item, 0, int))
    try:
        code_points = CodePoints(**code_point_values)
    except ConfigError as exc:
        raise ConfigError(f"hkp_hks config: {exc}") from None
    kwargs: dict[str, object] = {
        "allowed_prfs": _algorithms(items, "allowed_prf", PRF, defaults.allowed_prfs),
        "allowed_mac_algorithms": _algorithms(
            items, "allowed_mac_algorithms", MacAlgorithm, defaults.allowed_mac_algorithms
        ),
        "required_prf": _named("required_prf", items["required_prf"], PRF)
        if "required_prf" in items
        else defaults.required_prf,
        "required_mac_algorithm": _named(
            "required_mac_algorithm", items["required_mac_algorithm"], MacAlgorithm
        )
        if "required_mac_algorithm" in items
        else defaults.required_mac_algorithm,
        "require_timestamp": _boolean(items, "require_timestamp", defaults.require_timestamp),
        "timestamp_window": float(
            _number(items, "timestamp_window", defaults.timestamp_window, float)
        ),
        "key_lifetime": int(_number(items, "key_lifetime", defaults.key_lifetime, int)),
        "hk_length": int(_number(items, "hk_length", defaults.hk_length, int)),
        "code_points": code_points,
    }
    try:
        policy = HKSPolicy(**kwargs)  # type: ignore[arg-type]
    except ConfigError as exc:
        raise ConfigError(f"hkp_hks config: {exc}") from None
    replay_db = items.get("replay_db", DEFAULT_REPLAY_DB)
    if not replay_db.startswith("/"):
        raise ConfigError(f"hkp_hks config: replay_db = {replay_db!r} must be an absolute path")
    interval = float(_number(items, "log_summary_interval", DEFAULT_SUMMARY_INTERVAL, float))
    if not 0 <= interval <= MAX_SUMMARY_INTERVAL:
        raise ConfigError(
            f"hkp_hks config: log_summary_interval = {interval}: 0-{MAX_SUMMARY_INTERVAL:.0f} s"
        )
    store = items.get("replay_store", "sqlite").lower()
    if store not in REPLAY_STORES:
        raise ConfigError(
            f"hkp_hks config: replay_store = {items['replay_store']!r}: "
            f"use {' or '.join(REPLAY_STORES)}"
        )
    conninfo = items.get("replay_postgresql", "")
    if store == "postgresql" and not conninfo:
        raise ConfigError(
            "hkp_hks config: replay_store = postgresql needs replay_postgresql, a libpq "
            'connection string such as "host=db.example.net dbname=hkp user=hkp_hks"'
        )
    commit = items.get("replay_commit", "inline").lower()
    if commit not in REPLAY_COMMITS:
        raise ConfigError(
            f"hkp_hks config: replay_commit = {items['replay_commit']!r}: "
            f"use {' or '.join(REPLAY_COMMITS)}"
        )
    return ModuleConfig(policy, replay_db, interval, store, conninfo, commit)
