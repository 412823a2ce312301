"""`hkp-fuzz minimize`: shrink a kept case while the same oracle still fires.

RADIUS cases lose whole attributes first, then the tails of attribute values; MH cases
lose runs of octets (halves, quarters, ... single octets). Each candidate is sent once
(with a fresh run of the engine: the same oracles as the run that found it), and the
expectation is recomputed, so a candidate that became a valid request no longer counts
as a wrong accept.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

from .cases import Case, Setup, radius_expectation
from .mh import reference, valid_hmk
from .radius import Attributes

Fires = Callable[[Case], bool]


def _with_attributes(case: Case, attrs: Attributes, setup: Setup) -> Case:
    expect, reason = radius_expectation(attrs, setup, case.message_authenticator)
    return case.replace(attributes=attrs, expect=expect, reason=reason)


def _with_mh(case: Case, wire: bytes, setup: Setup) -> Case:
    ref = reference(wire, valid_hmk(setup.hmk), None)
    return case.replace(mh=wire, expect="any" if ref.valid else "reject", reason=ref.reason)


def _radius_candidates(case: Case, setup: Setup) -> Iterator[Case]:
    attrs = case.attributes
    for index in range(len(attrs)):
        yield _with_attributes(case, attrs[:index] + attrs[index + 1 :], setup)
    for index, (kind, value) in enumerate(attrs):
        if len(value) > 1:
            shorter = [*attrs[:index], (kind, value[: len(value) // 2]), *attrs[index + 1 :]]
            yield _with_attributes(case, shorter, setup)


def _mh_candidates(case: Case, setup: Setup) -> Iterator[Case]:
    wire = case.mh
    size = len(wire) // 2
    while size >= 1:
        for start in range(0, len(wire), size):
            yield _with_mh(case, wire[:start] + wire[start + size :], setup)
        size //= 2


def minimize(case: Case, setup: Setup, fires: Fires, budget: int = 400) -> tuple[Case, int]:
    """Greedy shrinking: take the first candidate that still fires, start over from
    it; stop when none does or after `budget` attempts. Returns (case, attempts)."""
    attempts = 0
    current = case
    improved = True
    while improved and attempts < budget:
        improved = False
        candidates = _mh_candidates if case.target == "mh" else _radius_candidates
        for candidate in candidates(current, setup):
            attempts += 1
            if fires(candidate):
                current = candidate.replace(chain=[*case.chain, "minimized"])
                improved = True
                break
            if attempts >= budget:
                break
    return current, attempts


def size(case: Case) -> int:
    if case.target == "mh":
        return len(case.mh)
    return sum(2 + len(v) for _, v in case.attributes)
