"""Verify (V flag, §6.2.3) against a real lab (hkp-ar + FreeRADIUS over UDP on loopback):
`hkp-mn verify` of a held key; and when the AR does not hold the MN's key, the real AR
silently drops the V request (§6.3.1) and the MN falls back to a full MN-HKS request
(§6.2.3, R44): shown in process, on a clock skipped to each retransmission timer."""

from __future__ import annotations

import dataclasses
import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from ar_proxy.control import query
from hkp_lab.lab import Lab, wait_for
from hkp_radius.constants import N_HO_KEYTRIES
from hkp_radius.mn import KeyEstablished, Kind, MobileNode, RequestSent, VerifyUnanswered
from mn_client import LossyTransport, SkippingClock, Transport, describe_event, starter

from .mn_lab import ar_id, coa, exchange, needs_root_and_freeradius, node_for, running_lab, udp

pytestmark = [pytest.mark.integration, needs_root_and_freeradius]

REPO = Path(__file__).resolve().parents[2]
COA = "2001:db8:1ab::301"
TRANSMISSIONS = 1 + N_HO_KEYTRIES  # the first, then N_HO_KEYTRIES retransmissions


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


def test_cli_verify_of_a_held_key_verifies_at_once(lab: Lab, tmp_path: Path) -> None:
    identity = next(i for i in lab.identities if i.nai.startswith("alice@"))
    hmk_file = tmp_path / "alice.hmk"
    hmk_file.write_text(identity.hmk.hex())
    keys = tmp_path / "keys.json"
    common = [
        "--nai", identity.nai, "--hmk-file", str(hmk_file), "--ar", lab.ar_id,
        "--udp", f"[{lab.ar_host}]:{lab.ar_port}", "--keys", str(keys), "--coa", COA,
    ]  # fmt: skip
    request = hkp_mn("request", *common, "--json")
    assert request.returncode == 0, request.stdout + request.stderr
    first = json.loads(request.stdout)
    assert first["ok"] and not first["fell_back"]
    verify = hkp_mn("verify", *common, "--json")
    assert verify.returncode == 0, verify.stdout + verify.stderr
    result = json.loads(verify.stdout)
    assert result["verified"] is True and not result["fell_back"]
    assert result["spi"] == first["spi"]


def ar_counted(lab: Lab) -> int:
    """Datagrams the AR has finished with: exchanges ended plus datagrams discarded."""
    status = query(str(lab.ar_control), "status")
    return sum(status["exchanges"].values()) + sum(status["discarded"].values())


class SilentlyDropped(LossyTransport):
    """The MN's transport, watched: after each of the first `count` sends it waits (on the
    AR's own counters) until the AR has dealt with the datagram without answering, then
    skips the MN's clock to its retransmission timer: the silence is known, not waited
    out. Nothing is dropped here; the AR does the dropping."""

    def __init__(
        self, inner: Transport, lab: Lab, node: MobileNode, clock: SkippingClock, count: int
    ) -> None:
        super().__init__(inner, drop=0, on_drop=lambda: None)
        self.lab, self.node, self.clock = lab, node, clock
        self.count = count
        self.sent_data: list[bytes] = []

    def send(self, ar_id: bytes, data: bytes) -> None:
        before = ar_counted(self.lab)
        super().send(ar_id, data)
        self.sent_data.append(data)
        if len(self.sent_data) <= self.count:
            wait_for(lambda: ar_counted(self.lab) > before, 10.0, "the AR to drop the V request")
            assert self.inner.receive() == []  # dropped, not answered
            self.clock.skip_to(self.node.next_timer())


def test_verify_the_ar_drops_falls_back_to_a_new_key(lab: Lab) -> None:
    """§6.3.1: the AR drops a V request whose MN-AR MAC fails, without a word; the MN
    sends it 1 + N_HO_KEYTRIES times, HKEY_REQ_TOUT apart (its clock skipped to each timer
    once the AR's counters show the drop), then falls back to a full MN-HKS request
    (§6.2.3, R44) and gets a new key that replaces the old one."""
    node = node_for(lab, "alice")
    first = exchange(node, udp(lab), starter(node, Kind.REQUEST, ar_id(lab), coa(0x301))).final
    assert isinstance(first, KeyEstablished)
    held = node.keys.get(node.config.nai, ar_id(lab))
    assert held is not None
    node.keys.put(dataclasses.replace(held, hk=bytes(20)))  # a key the AR does not hold
    clock = SkippingClock()
    transport = SilentlyDropped(udp(lab), lab, node, clock, count=TRANSMISSIONS)
    result = exchange(
        node, transport, starter(node, Kind.VERIFY, ar_id(lab), coa(0x301)), clock=clock
    )
    lines = [describe_event(event) for event in result.events]
    sent = [e for e in result.events if isinstance(e, RequestSent)]
    assert [e.attempt for e in sent[:TRANSMISSIONS]] == list(range(1, TRANSMISSIONS + 1))
    assert len({e.message_id for e in sent[:TRANSMISSIONS]}) == 1
    (unanswered,) = [e for e in result.events if isinstance(e, VerifyUnanswered)]
    assert unanswered.transmissions == TRANSMISSIONS
    assert any("full MN-HKS request (§6.2.3)" in line for line in lines)
    final = result.final
    assert isinstance(final, KeyEstablished) and final.replaced and not final.verified, lines
    assert final.key.spi != held.spi and final.key.hk != bytes(20)
    # The fallback is one new request: a new Message ID, its first attempt, and only its
    # own retransmissions after it (one, when a loaded machine answers after
    # HKEY_REQ_TOUT: what a loss of that answer would look like too).
    fallback = sent[TRANSMISSIONS:]
    assert fallback and fallback[0].attempt == 1
    assert {e.message_id for e in fallback} == {fallback[0].message_id}
    assert fallback[0].message_id != sent[0].message_id
    assert [e.attempt for e in fallback] == list(range(1, len(fallback) + 1))
    assert transport.sent == len(sent)
