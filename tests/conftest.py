"""Test-wide settings: Hypothesis without per-example deadlines (a loaded CI machine
must not turn a slow example into a failure; speed is measured by benchmarks/)."""

from __future__ import annotations

from hypothesis import settings

settings.register_profile("hkp", deadline=None, print_blob=True)
settings.load_profile("hkp")
