"""Issue 9, Must show 4 (and the generator's promise): a case is (seed, index), the
same in any order, in any process; the suite's fuzz tests draw from seeded sources
only, so a failure replays."""

from __future__ import annotations

import ast
import os
import subprocess
import sys
from pathlib import Path

from hkp_fuzz.cases import Setup, digest, generate
from hkp_fuzz.mh import reference
from hkp_fuzz.radius import hkp_vsas, load_dictionary

REPO = Path(__file__).resolve().parents[1]
NAI = b"mn@example.net"
HMK = bytes(range(64))
# The suite's fuzz tests: every one draws its cases from a seed.
FUZZ_TESTS = [
    "tests/integration/test_freeradius_fuzz.py",
    "tests/integration/test_ar_udp.py",
    "tests/integration/test_ar_raw.py",
    "tests/integration/test_fuzz_lab.py",
    "tests/test_fuzz_broken.py",
]


def setup(target: str = "radius", seed: int = 5) -> Setup:
    return Setup(target, seed, NAI, HMK, dictionary=load_dictionary())


def test_a_case_is_its_seed_and_index_in_any_order() -> None:
    forward = [generate(setup(), i) for i in range(300)]
    backward = [generate(setup(), i) for i in reversed(range(300))][::-1]
    assert [c.to_json() for c in forward] == [c.to_json() for c in backward]
    assert digest(forward) == digest(backward)
    assert digest(forward) != digest(generate(setup(seed=6), i) for i in range(300))
    mh = [generate(setup("mh"), i).mh for i in range(300)]
    assert mh == [generate(setup("mh"), i).mh for i in range(300)]


def test_the_same_seed_gives_the_same_cases_in_another_process() -> None:
    def run(hash_seed: str) -> str:
        done = subprocess.run(
            [sys.executable, "-m", "hkp_fuzz", "radius", "127.0.0.1:9", "--secret", "s",
             "--seed", "11", "--cases", "500", "--dry-run", "--json"],
            cwd=REPO, capture_output=True, text=True, check=True,
            env={**os.environ, "PYTHONHASHSEED": hash_seed},
        )  # fmt: skip
        return done.stdout

    assert run("1") == run("2")


def test_case_zero_is_the_valid_template_and_mutants_are_judged_by_the_core() -> None:
    zero = generate(setup(), 0)
    assert zero.chain == [] and zero.expect == "any"
    assert reference(b"".join(hkp_vsas(zero.attributes, 1)), HMK, NAI).valid
    kinds = {generate(setup(), i).expect for i in range(1, 400)}
    assert kinds == {"any", "reject"}  # crypto-valid mutants and broken ones


def test_the_fuzz_tests_draw_from_seeds_only() -> None:
    for name in FUZZ_TESTS:
        tree = ast.parse((REPO / name).read_text())
        for node in ast.walk(tree):
            if isinstance(node, ast.Attribute) and node.attr in ("urandom", "token_bytes"):
                raise AssertionError(f"{name}:{node.lineno} draws unseeded randomness")
            if (
                isinstance(node, ast.Call)
                and isinstance(node.func, ast.Attribute)
                and node.func.attr == "Random"
                and not node.args
            ):
                raise AssertionError(f"{name}:{node.lineno}: random.Random() without a seed")
