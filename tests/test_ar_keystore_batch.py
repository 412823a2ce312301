"""The key store's writer applies a batch as its changes in order would (issue 14: it
writes each SPI's last change with executemany): a key stored and retired in one
batch is gone, an SPI deleted and given to a new key holds the new key, an FBU
Sequence # goes with its key's deletion. A real SQLite file; no root needed."""

from __future__ import annotations

from pathlib import Path

from ar_proxy.keystore import SqliteKeyStore
from hkp_radius.ar.keys import StoredKey


def key(spi: int, hk: bytes) -> StoredKey:
    return StoredKey(spi, b"mn@example.net", hk, None, 2e9, 1, bytes(16), 7)


def test_a_batch_leaves_what_its_changes_in_order_leave(tmp_path: Path) -> None:
    path = str(tmp_path / "keys.sqlite")
    store = SqliteKeyStore(path)
    store._apply([(1, "store", key(300, b"a" * 20)), (2, "fbu", (300, 5))])
    store._apply(
        [
            (3, "store", key(301, b"b" * 20)),
            (4, "delete", 300),  # retired; its FBU Sequence # goes with it
            (5, "store", key(300, b"c" * 20)),  # the SPI again, a new key
            (6, "store", key(302, b"d" * 20)),
            (7, "fbu", (302, 9)),
            (8, "delete", 302),  # stored and retired within the batch
            (9, "fbu", (301, 4)),
        ]
    )
    store.close()
    again = SqliteKeyStore(path)
    try:
        held = {k.spi: k.hk for k in again.load()}
        assert held == {300: b"c" * 20, 301: b"b" * 20}
        assert again.load_fbu_sequences() == {301: 4}
    finally:
        again.close()
