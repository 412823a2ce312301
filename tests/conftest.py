"""Test-wide settings: Hypothesis without per-example deadlines (a loaded CI machine
must not turn a slow example into a failure; speed is measured by benchmarks/); and the
`fake_ar` fixture of the hkp-fuzz mh tests (tests/fuzz_fake_ar.py)."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest
from hypothesis import settings

from .fuzz_fake_ar import Answer, FakeAr

settings.register_profile("hkp", deadline=None, print_blob=True)
settings.load_profile("hkp")


@pytest.fixture
def fake_ar() -> Iterator[Callable[[Answer], FakeAr]]:
    started: list[FakeAr] = []

    def start(answer: Answer) -> FakeAr:
        started.append(FakeAr(answer))
        return started[-1]

    yield start
    for server in started:
        server.close()
