"""P11 freshness across restarts: the PAR keeps the Sequence # of the last FBU it accepted
under each SPI in its key store, and sends the FBack only once that is on disk, so an FBU
replayed after hkp-ar was killed (SIGKILL right after the FBack) is still refused, and the
next FBU of the MN is accepted. Real hkp-ar and FreeRADIUS processes over UDP."""

from __future__ import annotations

import ipaddress
import signal
from collections.abc import Callable
from pathlib import Path

import pytest

from ar_proxy.keystore import SqliteKeyStore
from hkp_radius.ar.keys import StoredKey
from hkp_radius.crypto.fmip import sign_fmip
from hkp_radius.wire.fmip import (
    AlternateCareOfAddress,
    BindingAuthorizationFMIP,
    FastBindingAck,
    FastBindingUpdate,
    decode_fmip,
)
from tests.ar_helpers import AR_ID, NAI, build_hkreq, verified_hkresp, wall_stamp

from .ar_fixtures import ArProcess, MobileNodeSocket

pytestmark = pytest.mark.integration

MN_COA = ipaddress.IPv6Address("::1").packed  # the MN socket's own address: its CoA
NCOA = ipaddress.IPv6Address("2001:db8:2::77").packed


def fbu(sequence: int, spi: int, hk: bytes) -> bytes:
    update = FastBindingUpdate(
        sequence=sequence,
        lifetime=15,
        badf=BindingAuthorizationFMIP(spi),
        options=(AlternateCareOfAddress(NCOA),),
    )
    return sign_fmip(update, hk, MN_COA, AR_ID)


def refusals(ar: ArProcess) -> list[str]:
    return [str(e.get("reason")) for e in ar.events(since_start=True, name="fbu-refused")]


def test_fbu_replayed_after_a_kill_is_refused(start_ar: Callable[..., ArProcess]) -> None:
    ar = start_ar()
    mn = MobileNodeSocket(ar.udp_port)
    try:
        hkreq = build_hkreq(message_id=51, coa=MN_COA, timestamp=wall_stamp())
        response, hk = verified_hkresp(mn.exchange(hkreq), message_id=51)
        ar.wait_stored(response.spi)
        first = fbu(7, response.spi, hk)
        fback = decode_fmip(mn.exchange(first))
        assert isinstance(fback, FastBindingAck) and fback.status == 0 and fback.sequence == 7
        assert ar.process is not None
        ar.process.send_signal(signal.SIGKILL)  # no clean shutdown: only what is on disk
        ar.process.wait(10)
        ar.stop()
        ar.start()
        mn.close()
        mn = MobileNodeSocket(ar.udp_port)
        mn.send(first)  # the replay
        ar.wait_event(event="fbu-refused", spi=response.spi)
        assert mn.pending() == []
        assert refusals(ar) == ["replay: Sequence # 7 not after 7"]
        newer = decode_fmip(mn.exchange(fbu(8, response.spi, hk)))
        assert isinstance(newer, FastBindingAck) and newer.sequence == 8
    finally:
        mn.close()


def test_sequence_rows_go_with_their_key(tmp_path: Path) -> None:
    """The key store deletes an SPI's Sequence # with its key, in the same transaction,
    and hands back only those of keys that exist."""
    store = SqliteKeyStore(str(tmp_path / "keys.sqlite"))
    store.start()
    for spi in (300, 301):
        store.store(StoredKey(spi, NAI, bytes(20), MN_COA, 2_000_000_000.0, 1, AR_ID))
        store.store_fbu_sequence(spi, spi - 290)
    store.delete(300)
    assert store.close()
    again = SqliteKeyStore(str(tmp_path / "keys.sqlite"))
    try:
        assert again.load_fbu_sequences() == {301: 11}
        rows = again._db.execute("SELECT spi FROM fbu_sequences").fetchall()
        assert rows == [(301,)]
    finally:
        again.close()
