"""Issue 11: `proto = tls` home servers and the [tls] section of hkp-ar's configuration,
checked whole at start (every error names the setting), and the lab PKI's files."""

from __future__ import annotations

import ssl
from pathlib import Path

import pytest

from ar_proxy.config import DEFAULT_RADSEC_PORT, TlsSettings, load_config
from ar_proxy.radsec import client_context
from hkp_radius.errors import ConfigError
from hkp_support.certs import CERT_MODE, KEY_MODE, RadSecCerts, make_radsec_certs

BASE = """
[ar]
address = 2001:db8::1
key_store = {store}
[home_server hks]
proto = tls
ipaddr = 127.0.0.1
{server}
[realm example.net]
home_servers = hks
"""


@pytest.fixture(scope="module")
def certs(tmp_path_factory: pytest.TempPathFactory) -> RadSecCerts:
    return make_radsec_certs(tmp_path_factory.mktemp("pki"))


def tls_section(certs: RadSecCerts, **changes: object) -> str:
    items: dict[str, object] = {
        "ca_file": certs.client.ca,
        "certificate_file": certs.client.certificate,
        "private_key_file": certs.client.key,
        "server_name": certs.server_name,
    }
    items.update(changes)
    return "[tls]\n" + "".join(f"{k} = {v}\n" for k, v in items.items() if v is not None)


def write(tmp_path: Path, tls: str, server: str = "") -> Path:
    path = tmp_path / "hkp-ar.conf"
    text = BASE.replace("{store}", str(tmp_path / "keys.sqlite")).replace("{server}", server)
    path.write_text(text + tls)
    return path


def test_tls_home_server_defaults_port_2083_and_secret_radsec(
    tmp_path: Path, certs: RadSecCerts
) -> None:
    config = load_config(write(tmp_path, tls_section(certs)))
    server = config.realms["example.net"].servers[0]
    assert server.proto == "tls" and server.port == DEFAULT_RADSEC_PORT == 2083
    assert server.secret == b"radsec"  # RFC 6614 §2.3
    assert server.tls is not None and server.tls.server_name == certs.server_name
    assert "private_key_file" not in repr(server.tls)


def test_per_server_name_overrides_the_tls_section(tmp_path: Path, certs: RadSecCerts) -> None:
    config = load_config(write(tmp_path, tls_section(certs), "server_name = hks2.example"))
    tls = config.realms["example.net"].servers[0].tls
    assert tls is not None and tls.server_name == "hks2.example"


def test_client_context_is_tls12_or_newer_and_checks_names(certs: RadSecCerts) -> None:
    settings = TlsSettings(
        str(certs.client.ca), str(certs.client.certificate), str(certs.client.key)
    )
    context = client_context(settings)
    assert context.minimum_version == ssl.TLSVersion.TLSv1_2
    assert context.verify_mode == ssl.CERT_REQUIRED and context.check_hostname


@pytest.mark.parametrize(
    ("tls", "server", "message"),
    [
        (None, "", "proto = tls needs a [tls] section"),
        ({"ca_file": "/nonexistent/ca.pem"}, "", "[tls] ca_file = '/nonexistent/ca.pem': no such"),
        ({"certificate_file": None}, "", "certificate_file is required"),
        ({}, "proto = dtls", "proto = 'dtls': write udp"),
        ({"keepalive_interval": "0"}, "", "keepalive_interval = '0': must be from 1"),
        ({"verify": "no"}, "", "unknown setting 'verify'"),
    ],
)
def test_bad_tls_settings_name_the_setting(
    tmp_path: Path, certs: RadSecCerts, tls: dict[str, object] | None, server: str, message: str
) -> None:
    path = write(tmp_path, "" if tls is None else tls_section(certs, **tls), server)
    if server.startswith("proto"):  # instead of the base's proto = tls
        path.write_text(path.read_text().replace("proto = tls\n", "", 1))
    with pytest.raises(ConfigError) as caught:
        load_config(path)
    assert message in str(caught.value), caught.value


def test_key_readable_by_others_is_refused(tmp_path: Path, certs: RadSecCerts) -> None:
    key = tmp_path / "open.key"
    key.write_bytes(certs.client.key.read_bytes())
    key.chmod(0o644)
    with pytest.raises(ConfigError, match=r"readable by others.*chmod 600"):
        load_config(write(tmp_path, tls_section(certs, private_key_file=key)))


def test_certificate_and_key_that_do_not_match_are_refused(
    tmp_path: Path, certs: RadSecCerts
) -> None:
    with pytest.raises(ConfigError, match=r"certificate_file.*cannot load it"):
        load_config(write(tmp_path, tls_section(certs, private_key_file=certs.server.key)))


def test_lab_pki_files_modes_and_chain(certs: RadSecCerts) -> None:
    for files in (certs.server, certs.client):
        assert files.key.stat().st_mode & 0o777 == KEY_MODE
        assert files.certificate.stat().st_mode & 0o777 == CERT_MODE
        assert files.ca == certs.server.ca
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.load_verify_locations(certs.client.ca)
    context.load_cert_chain(certs.client.certificate, certs.client.key)  # they match


def test_check_does_not_call_the_radsec_secret_short(tmp_path: Path, certs: RadSecCerts) -> None:
    from ar_proxy.daemon import secret_warnings

    assert secret_warnings(load_config(write(tmp_path, tls_section(certs)))) == []
