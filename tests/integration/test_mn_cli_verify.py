"""`hkp-mn verify` against a real lab (hkp-ar + FreeRADIUS over UDP on loopback) when the
AR does not hold the MN's key: the real AR silently drops the V request (§6.3.1), and the
MN falls back to a full MN-HKS request (§6.2.3, R44) and says so."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from hkp_lab.lab import Lab

from .mn_lab import needs_root_and_freeradius, running_lab

pytestmark = [pytest.mark.integration, needs_root_and_freeradius]

REPO = Path(__file__).resolve().parents[2]
COA = "2001:db8:1ab::301"


@pytest.fixture(scope="module")
def lab() -> Iterator[Lab]:
    with running_lab() as started:
        yield started


def hkp_mn(*args: str) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [env.get("PYTHONPATH"), str(REPO)]))
    return subprocess.run(
        [sys.executable, "-m", "mn_client.cli", *args], capture_output=True, text=True,
        timeout=60, env=env, cwd=REPO, check=False,
    )  # fmt: skip


def test_verify_the_ar_drops_falls_back_to_a_new_key(lab: Lab, tmp_path: Path) -> None:
    identity = next(i for i in lab.identities if i.nai.startswith("alice@"))
    hmk_file = tmp_path / "alice.hmk"
    hmk_file.write_text(identity.hmk.hex())
    keys = tmp_path / "keys.json"
    common = [
        "--nai", identity.nai, "--hmk-file", str(hmk_file), "--ar", lab.ar_id,
        "--udp", f"[{lab.ar_host}]:{lab.ar_port}", "--keys", str(keys), "--coa", COA,
        "--timeout", "0.5",
    ]  # fmt: skip
    request = hkp_mn("request", *common, "--json")
    assert request.returncode == 0, request.stdout + request.stderr
    first = json.loads(request.stdout)
    assert first["ok"] and not first["fell_back"]

    document = json.loads(keys.read_text())
    (held,) = document["keys"]
    held["hk"] = bytes(20).hex()  # a key the AR does not hold: its MN-AR MAC fails
    keys.write_text(json.dumps(document))

    verify = hkp_mn("verify", *common)
    assert verify.returncode == 0, verify.stdout + verify.stderr
    out = verify.stdout
    assert "HKReq verify" in out and "(retransmission 3)" in out
    assert "verify unanswered after 4 transmissions" in out
    assert "full MN-HKS request (§6.2.3)" in out
    assert "MN: new key, replacing the old one: SPI" in out

    again = hkp_mn("verify", *common, "--json")  # the new key verifies at once
    assert again.returncode == 0, again.stdout + again.stderr
    result = json.loads(again.stdout)
    assert result["verified"] is True and not result["fell_back"]
    (stored,) = json.loads(keys.read_text())["keys"]
    assert stored["hk"] != bytes(20).hex() and stored["spi"] == result["spi"]
