"""A deliberately broken RADIUS HKS for the hkp-fuzz tests (issue 9, Must show 1).

It answers Status-Server and HKReq Access-Requests the way the HKS does (P8: the HK
salt-encrypted in HKP-Handover-Key, HKP-HKS-Nonce, Message-Authenticator, Response
Authenticator), with three planted bugs:

  hang          an attribute whose value is 253 octets (the longest there is) wedges
                it: it answers nothing more, Status-Server included, until reset;
  wrong accept  an MN-HKS MAC option of an unknown Algorithm Type is not checked, and
                the request is accepted;
  wrong key     with PRF 2 (HMAC-SHA256) the HK is derived with PRF 1.

`reset` (or a datagram b"reset" to `control_port`, which `restart_command` sends and
whose b"ok" it waits for) un-wedges it: the fuzzer's --restart-command.
"""

from __future__ import annotations

import hashlib
import hmac
import select
import socket
import struct
import sys
import threading

from hkp_radius import crypto
from hkp_radius.constants import PRF, MacSubtype
from hkp_radius.crypto.salt import salt_encrypt
from hkp_radius.errors import DecodeError, HKPError
from hkp_radius.wire import HKReq, decode_message

ACCEPT, REJECT, STATUS_SERVER, ACCESS_REQUEST = 2, 3, 12, 1
VENDOR = 32473
MA = 80
HANG_LENGTH = 253


def _vsa(vendor_type: int, value: bytes) -> bytes:
    body = struct.pack("!IBB", VENDOR, vendor_type, len(value) + 2) + value
    return bytes((26, len(body) + 2)) + body


class BrokenServer:
    def __init__(self, secret: bytes, users: dict[bytes, bytes]) -> None:
        self.secret = secret
        self.users = users
        self.wedged = False
        self.hang_length: int | None = HANG_LENGTH  # None: planted bug 1 off
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(("127.0.0.1", 0))
        self.control = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.control.bind(("127.0.0.1", 0))
        self.port: int = self.sock.getsockname()[1]
        self.control_port: int = self.control.getsockname()[1]
        self.hangs = self.accepts = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._serve, daemon=True)

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    @property
    def restart_command(self) -> str:
        code = (
            "import socket; s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); "
            f"s.settimeout(10); s.sendto(b'reset', ('127.0.0.1', {self.control_port})); "
            "assert s.recv(16) == b'ok'"
        )
        return f'{sys.executable} -c "{code}"'

    def __enter__(self) -> BrokenServer:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(5)
        self.sock.close()
        self.control.close()

    def _serve(self) -> None:
        while not self._stop.is_set():
            ready, _, _ = select.select([self.sock, self.control], [], [], 0.1)
            if self.control in ready:
                _, peer = self.control.recvfrom(64)
                self.wedged = False
                self.control.sendto(b"ok", peer)
            if self.sock in ready:
                data, peer = self.sock.recvfrom(4096)
                if self.wedged:
                    continue
                reply = self.handle(data)
                if reply is not None:
                    self.sock.sendto(reply, peer)

    def handle(self, data: bytes) -> bytes | None:
        if len(data) < 20 or struct.unpack("!H", data[2:4])[0] != len(data):
            return None
        attrs, offset = [], 20
        while offset < len(data):
            if offset + 2 > len(data) or data[offset + 1] < 2:
                return None
            end = offset + data[offset + 1]
            if end > len(data):
                return None
            attrs.append((data[offset], data[offset + 2 : end], offset))
            offset = end
        mas = [a for a in attrs if a[0] == MA]
        if len(mas) != 1 or len(mas[0][1]) != 16:
            return None
        at = mas[0][2]
        zeroed = data[: at + 2] + bytes(16) + data[at + 18 :]
        if not hmac.compare_digest(hmac.new(self.secret, zeroed, hashlib.md5).digest(), mas[0][1]):
            return None
        if any(len(value) == self.hang_length for _, value, _ in attrs):  # planted bug 1
            self.wedged = True
            self.hangs += 1
            return None
        if data[0] == STATUS_SERVER:
            return self._reply(data, ACCEPT, b"")
        if data[0] != ACCESS_REQUEST:
            return None
        return self._access(data, [(t, v) for t, v, _ in attrs])

    def _access(self, data: bytes, attrs: list[tuple[int, bytes]]) -> bytes:
        names = [v for t, v in attrs if t == 1]
        vsas = [
            (v[4], v[6:])
            for t, v in attrs
            if t == 26 and len(v) >= 6 and v[:4] == struct.pack("!I", VENDOR)
        ]
        chunks = [v for k, v in vsas if k == 1]
        ars = [v for k, v in vsas if k == 2 and len(v) == 16]
        if not names or not chunks or not ars or names[0] not in self.users:
            return self._reply(data, REJECT, b"")
        nai, hmk = names[0], self.users[names[0]]
        wire = b"".join(chunks)
        try:
            message = decode_message(wire)
        except DecodeError:
            return self._reply(data, REJECT, b"")
        mac = message.mac(MacSubtype.MN_HKS)
        if not isinstance(message, HKReq) or mac is None or message.mn_id != nai:
            return self._reply(data, REJECT, b"")
        mn_nonce = message.mn_nonce or b""
        if crypto.supported_mac_algorithm(mac.algorithm):
            try:
                hik = crypto.derive_hik(hmk, message.prf, message.message_id, mac.algorithm)
            except HKPError:
                return self._reply(data, REJECT, b"")
            if not crypto.verify_mac(wire, message, MacSubtype.MN_HKS, hik):
                return self._reply(data, REJECT, b"")
        # else: planted bug 2, an unknown algorithm passes unchecked
        prf = message.prf if crypto.supported_prf(message.prf) else PRF.HMAC_SHA1
        if prf == PRF.HMAC_SHA256:
            prf = PRF.HMAC_SHA1  # planted bug 3: the wrong PRF for the HK
        hks_nonce = hashlib.sha256(data).digest()[:16]
        hk = crypto.derive_hk(hmk, prf, mn_nonce, hks_nonce, nai, ars[0], 32)
        salt = bytes((0x80 | data[4] & 0x7F, data[5]))
        self.accepts += 1
        attributes = _vsa(4, salt_encrypt(hk, self.secret, data[4:20], salt)) + _vsa(5, hks_nonce)
        return self._reply(data, ACCEPT, attributes)

    def _reply(self, request: bytes, code: int, attributes: bytes) -> bytes:
        authenticator = request[4:20]
        attributes += bytes((MA, 18)) + bytes(16)
        length = 20 + len(attributes)
        head = bytes((code, request[1])) + struct.pack("!H", length)
        mac = hmac.new(self.secret, head + authenticator + attributes, hashlib.md5).digest()
        attributes = attributes[:-16] + mac
        response = hashlib.md5(head + authenticator + attributes + self.secret).digest()
        return head + response + attributes
