"""hkp-fuzz: seeded RADIUS attribute and Mobility Header fuzzing (issue 9).

A case is (seed, index): `cases.generate` rebuilds it byte for byte, so every anomaly
replays. RADIUS packets are laid out with pyrad's dictionary and attribute codec, HKP
messages and MACs with the core (hkp_radius.wire, hkp_radius.crypto).
"""

from __future__ import annotations

__all__ = ["cases", "mh", "radius"]
