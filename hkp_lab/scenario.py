"""Scenario files (TOML, docs/lab.md): a topology (ARs, one HKS), MN identities and
steps with their expected outcomes. `load(path)` parses and checks one; every problem is
a ScenarioError naming the line, so `hkp-lab run FILE` can exit 2 before starting
anything."""

from __future__ import annotations

import re
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .handover import FORGERIES, Step
from .lab import NAMES, PROHIBITED

SHIPPED = Path(__file__).resolve().parent / "scenarios"
ACTIONS: dict[str, tuple[set[str], set[str]]] = {  # do -> (required keys, allowed keys)
    "attach": ({"link"}, {"link"}),
    "request": ({"who", "ar", "expect"}, {"who", "ar", "expect"}),
    "refresh": ({"who", "ar", "expect"}, {"who", "ar", "expect"}),
    "verify": ({"who", "ar", "expect"}, {"who", "ar", "expect"}),
    "fbu": ({"who", "ar", "expect"}, {"who", "ar", "expect", "key_of", "spi_of", "forge"}),
}
EXPECTATIONS = {
    "request": {"key", "prohibited"},
    "refresh": {"key", "prohibited"},
    "verify": {"verified", "key", "prohibited"},
    "fbu": {"fback", "refused"},
}
MAX_ARS = 16  # names become namespaces and /64s; a lab machine holds far more
KNOWN_MNS = {*NAMES, PROHIBITED.split("@")[0]}
_TOML_LINE = re.compile(r"\(at line (\d+), column (\d+)\)")


class ScenarioError(Exception):
    """A scenario file that cannot run; the message names the file and the line."""


@dataclass(frozen=True)
class Scenario:
    title: str
    routers: list[str]
    mns: list[str]
    steps: list[Step]


def _table_lines(text: str, header: str) -> list[int]:
    """Line numbers (1-based) of each `[[header]]` in the text, in order."""
    pattern = re.compile(rf"^\s*\[\[\s*{re.escape(header)}\s*\]\]")
    return [n for n, line in enumerate(text.splitlines(), 1) if pattern.match(line)]


def load(path: Path) -> Scenario:
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ScenarioError(f"{path}: cannot read: {exc}") from None
    return parse(text, str(path))


def parse(text: str, name: str = "<scenario>") -> Scenario:
    try:
        document = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        where = _TOML_LINE.search(str(exc))
        at = f"line {where.group(1)}" if where else "somewhere"
        raise ScenarioError(f"{name}:{at}: not TOML: {exc}") from None

    def fail(line: int, message: str) -> ScenarioError:
        return ScenarioError(f"{name}:line {line}: {message}")

    allowed_top = {"title", "topology", "ar", "mn", "step"}
    for key in document:
        if key not in allowed_top:
            raise fail(
                _key_line(text, key), f"unknown key {key!r} (expected {sorted(allowed_top)})"
            )
    title = document.get("title", name)
    if not isinstance(title, str):
        raise fail(_key_line(text, "title"), "title must be a string")
    topology = document.get("topology", {})
    if not isinstance(topology, dict) or topology.get("hks", 1) != 1 or set(topology) - {"hks"}:
        raise fail(_key_line(text, "topology"), "[topology] holds only hks = 1 (one HKS)")
    routers = _names(document, text, "ar", fail)
    if not routers or len(routers) > MAX_ARS:
        raise fail(1, f"a scenario needs 1 to {MAX_ARS} [[ar]] tables")
    mns = _names(document, text, "mn", fail)
    step_lines = _table_lines(text, "step")
    raw_steps = document.get("step", [])
    if not isinstance(raw_steps, list) or not raw_steps:
        raise fail(1, "a scenario needs [[step]] tables")
    steps = []
    for index, raw in enumerate(raw_steps):
        line = step_lines[index] if index < len(step_lines) else 1
        steps.append(_step(raw, line, routers, mns, fail))
    return Scenario(title, routers, mns, steps)


def _key_line(text: str, key: str) -> int:
    pattern = re.compile(rf"^\s*\[?\s*{re.escape(key)}\b")
    for number, line in enumerate(text.splitlines(), 1):
        if pattern.match(line):
            return number
    return 1


def _names(document: dict[str, Any], text: str, table: str, fail: Any) -> list[str]:
    lines = _table_lines(text, table)
    names: list[str] = []
    entries = document.get(table, [])
    if not isinstance(entries, list):
        raise fail(_key_line(text, table), f"{table} must be [[{table}]] tables")
    for index, entry in enumerate(entries):
        line = lines[index] if index < len(lines) else 1
        name = entry.get("name") if isinstance(entry, dict) else None
        if not isinstance(name, str) or not re.fullmatch(r"[a-z][a-z0-9]{0,11}", name):
            raise fail(line, f"[[{table}]] needs name = a short lower-case word")
        if set(entry) != {"name"}:
            raise fail(line, f"[[{table}]] holds only name")
        if table == "mn" and name not in KNOWN_MNS:
            raise fail(line, f"no lab identity {name!r} (the lab has {sorted(KNOWN_MNS)})")
        if name in names:
            raise fail(line, f"two [[{table}]] named {name!r}")
        names.append(name)
    return names


def _step(raw: Any, line: int, routers: list[str], mns: list[str], fail: Any) -> Step:
    if not isinstance(raw, dict):
        raise fail(line, "a step is a table")
    do = raw.get("do")
    if do not in ACTIONS:
        raise fail(line, f"step do = {do!r}: expected one of {sorted(ACTIONS)}")
    required, allowed = ACTIONS[do]
    keys = set(raw) - {"do"}
    if missing := required - keys:
        raise fail(line, f"{do} step lacks {', '.join(sorted(missing))}")
    if extra := keys - allowed:
        raise fail(line, f"{do} step does not take {', '.join(sorted(extra))}")
    for key in keys:
        if not isinstance(raw[key], str):
            raise fail(line, f"{key} must be a string")
    for key in ("link", "ar", "key_of", "spi_of"):
        if key in raw and raw[key] not in routers:
            raise fail(line, f"{key} = {raw[key]!r} is not an [[ar]] ({', '.join(routers)})")
    if "who" in raw and raw["who"] not in mns:
        raise fail(line, f"who = {raw['who']!r} is not an [[mn]] ({', '.join(mns)})")
    if "expect" in raw and raw["expect"] not in EXPECTATIONS[do]:
        raise fail(line, f"{do} expects one of {sorted(EXPECTATIONS[do])}, not {raw['expect']!r}")
    if raw.get("forge", "none") not in FORGERIES:
        raise fail(line, f"forge = {raw['forge']!r}: expected one of {list(FORGERIES[1:])}")
    return Step(line=line, **raw)
