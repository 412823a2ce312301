"""A lab PKI for RadSec (RFC 6614) between hkp-ar and the HKS: a CA and the
certificates it signs, made with `cryptography`, for the lab, the tests and the
benchmarks. An operator uses their own PKI instead (docs/hks.md "RadSec").

    pki = LabPKI.create(directory)                      # ca.pem (+ ca.key, 0600)
    server = pki.issue("hks", dns_names=["hks.lab.example"], ip_addresses=["127.0.0.1"])
    client = pki.issue("ar", client=True)               # ar.pem, ar.key (0600)

Certificates are short-lived (CERT_LIFETIME) and the keys are ECDSA P-256: quick to
make, and every TLS 1.2/1.3 stack takes them. `issue()` also makes the broken ones the
tests need: an expired certificate (`expired=True`) or one for another name.
"""

from __future__ import annotations

import datetime
import ipaddress
import os
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

# Short-lived: a lab's certificates outlive the lab by a day at most, so a leaked lab key
# is worth little. The CA lives as long as the certificates it signs.
CERT_LIFETIME = datetime.timedelta(days=2)
# Issued this long before now: a peer whose clock is a little behind still accepts them.
CLOCK_SKEW = datetime.timedelta(minutes=5)
KEY_MODE = 0o600  # private keys: the owner only
CERT_MODE = 0o644  # certificates are public


@dataclass(frozen=True)
class CertFiles:
    """A certificate, its private key and the CA that signed it, as PEM files."""

    certificate: Path
    key: Path
    ca: Path


def _now() -> datetime.datetime:
    return datetime.datetime.now(datetime.UTC)


def _write(path: Path, data: bytes, mode: int) -> None:
    # Created with its final mode: a key file is never readable by others, not even briefly.
    path.unlink(missing_ok=True)
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
    with os.fdopen(descriptor, "wb") as handle:
        handle.write(data)
    os.chmod(path, mode)  # whatever the umask took away from CERT_MODE


def _new_key() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP256R1())


def _key_pem(key: ec.EllipticCurvePrivateKey) -> bytes:
    return bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )


class LabPKI:
    """A CA in `directory` (ca.pem, ca.key) and the certificates it issues there."""

    def __init__(
        self, directory: Path, certificate: x509.Certificate, key: ec.EllipticCurvePrivateKey
    ) -> None:
        self.directory = directory
        self.certificate = certificate
        self.key = key

    @property
    def ca_path(self) -> Path:
        return self.directory / "ca.pem"

    @classmethod
    def load(cls, directory: str | os.PathLike[str]) -> LabPKI:
        """The CA that `create` wrote in `directory`, to issue more certificates."""
        path = Path(directory)
        certificate = x509.load_pem_x509_certificate((path / "ca.pem").read_bytes())
        key = serialization.load_pem_private_key((path / "ca.key").read_bytes(), None)
        if not isinstance(key, ec.EllipticCurvePrivateKey):
            raise ValueError(f"{path / 'ca.key'}: not an ECDSA key of a lab CA")
        return cls(path, certificate, key)

    @classmethod
    def create(cls, directory: str | os.PathLike[str], name: str = "hkp-radius lab CA") -> LabPKI:
        path = Path(directory)
        path.mkdir(parents=True, exist_ok=True)
        key = _new_key()
        subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
        now = _now()
        certificate = (
            x509.CertificateBuilder()
            .subject_name(subject)
            .issuer_name(subject)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - CLOCK_SKEW)
            .not_valid_after(now + CERT_LIFETIME)
            .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
            .add_extension(
                x509.KeyUsage(
                    digital_signature=True,
                    content_commitment=False,
                    key_encipherment=False,
                    data_encipherment=False,
                    key_agreement=False,
                    key_cert_sign=True,
                    crl_sign=True,
                    encipher_only=False,
                    decipher_only=False,
                ),
                critical=True,
            )
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), False)
            .sign(key, hashes.SHA256())
        )
        pki = cls(path, certificate, key)
        _write(pki.ca_path, certificate.public_bytes(serialization.Encoding.PEM), CERT_MODE)
        _write(path / "ca.key", _key_pem(key), KEY_MODE)
        return pki

    def issue(
        self,
        name: str,
        *,
        dns_names: Iterable[str] = (),
        ip_addresses: Iterable[str] = (),
        client: bool = False,
        expired: bool = False,
    ) -> CertFiles:
        """NAME.pem and NAME.key (0600) in the CA's directory: a server certificate
        (serverAuth) for `dns_names` and `ip_addresses`, or a client one (clientAuth).
        `expired`: valid until yesterday, for the tests of refused certificates."""
        key = _new_key()
        now = _now()
        if expired:
            not_before, not_after = now - 2 * CERT_LIFETIME, now - datetime.timedelta(days=1)
        else:
            not_before, not_after = now - CLOCK_SKEW, now + CERT_LIFETIME
        alternative: list[x509.GeneralName] = [x509.DNSName(d) for d in dns_names]
        alternative += [x509.IPAddress(ipaddress.ip_address(a)) for a in ip_addresses]
        usage = ExtendedKeyUsageOID.CLIENT_AUTH if client else ExtendedKeyUsageOID.SERVER_AUTH
        builder = (
            x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)]))
            .issuer_name(self.certificate.subject)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(not_before)
            .not_valid_after(not_after)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(x509.ExtendedKeyUsage([usage]), critical=False)
            .add_extension(
                x509.AuthorityKeyIdentifier.from_issuer_public_key(self.key.public_key()), False
            )
        )
        if alternative:
            builder = builder.add_extension(x509.SubjectAlternativeName(alternative), False)
        certificate = builder.sign(self.key, hashes.SHA256())
        files = CertFiles(
            certificate=self.directory / f"{name}.pem",
            key=self.directory / f"{name}.key",
            ca=self.ca_path,
        )
        _write(files.certificate, certificate.public_bytes(serialization.Encoding.PEM), CERT_MODE)
        _write(files.key, _key_pem(key), KEY_MODE)
        return files


@dataclass(frozen=True)
class RadSecCerts:
    """What one RadSec pair of ends needs: the HKS's server certificate and the AR's
    client certificate, from one CA (`server.ca == client.ca`)."""

    server: CertFiles
    client: CertFiles
    server_name: str  # the name the AR checks (a DNS subjectAltName of the server's)


LAB_SERVER_NAME = "hks.lab.example"


def make_radsec_certs(
    directory: str | os.PathLike[str],
    server_name: str = LAB_SERVER_NAME,
    server_addresses: Iterable[str] = ("127.0.0.1", "::1"),
) -> RadSecCerts:
    """A fresh lab CA in `directory` with a server certificate for `server_name` (and
    its loopback addresses) and a client certificate for hkp-ar."""
    pki = LabPKI.create(directory)
    server = pki.issue("hks", dns_names=[server_name], ip_addresses=server_addresses)
    client = pki.issue("hkp-ar", client=True)
    return RadSecCerts(server, client, server_name)
