"""A private OpenLDAP slapd for the tests and the lab: Debian's slapd with its own
cn=config directory (built with slapadd, so no server needs to be running to build it),
one mdb database for dc=example,dc=net, listening on 127.0.0.1 at a free port.

The directory holds the shipped hkp schema (raddb/mods-config/ldap/hkp/hkp.ldif), an
ou=people for the MNs and a service account for the HKS that alone may read
hkpHandoverMasterKey.

    with SlapdServer("/tmp/ldap", users={"mn@example.net": hmk}) as ldap:
        ldap.uri, ldap.bind_dn, ldap.bind_password
"""

from __future__ import annotations

import os
import pwd
import secrets
import shutil
import socket
import subprocess
from collections.abc import Mapping
from pathlib import Path

from hkp_support.paths import RADDB_SOURCE
from hkp_support.process import PrivateServer, free_port

SLAPD = "/usr/sbin/slapd"
SLAPADD = "/usr/sbin/slapadd"
LDAPSEARCH = "/usr/bin/ldapsearch"
SYSTEM_SCHEMA = Path("/etc/ldap/schema")
HKP_SCHEMA = RADDB_SOURCE / "mods-config" / "ldap" / "hkp" / "hkp.ldif"
SUFFIX = "dc=example,dc=net"
PEOPLE = f"ou=people,{SUFFIX}"
HKS_DN = f"cn=hkp-hks,ou=services,{SUFFIX}"
SLAPD_USER = "openldap"


def _config_ldif(work: Path, data_dir: Path, root_password: str) -> str:
    includes = "".join(
        f"include: file://{SYSTEM_SCHEMA / name}.ldif\n" for name in ("core", "cosine")
    )
    return f"""dn: cn=config
objectClass: olcGlobal
cn: config
olcPidFile: {work / "slapd.pid"}

dn: cn=module{{0}},cn=config
objectClass: olcModuleList
cn: module{{0}}
olcModulePath: /usr/lib/ldap
olcModuleLoad: back_mdb

dn: cn=schema,cn=config
objectClass: olcSchemaConfig
cn: schema

{includes}include: file://{HKP_SCHEMA}

dn: olcDatabase={{-1}}frontend,cn=config
objectClass: olcDatabaseConfig
objectClass: olcFrontendConfig
olcDatabase: {{-1}}frontend

dn: olcDatabase={{0}}config,cn=config
objectClass: olcDatabaseConfig
olcDatabase: {{0}}config
olcAccess: {{0}}to * by * none

dn: olcDatabase={{1}}mdb,cn=config
objectClass: olcDatabaseConfig
objectClass: olcMdbConfig
olcDatabase: {{1}}mdb
olcSuffix: {SUFFIX}
olcDbDirectory: {data_dir}
olcRootDN: cn=admin,{SUFFIX}
olcRootPW: {root_password}
olcDbIndex: objectClass eq
olcDbIndex: uid eq
olcAccess: {{0}}to attrs=hkpHandoverMasterKey,userPassword
  by dn.exact="{HKS_DN}" read by anonymous auth by * none
olcAccess: {{1}}to * by * read
"""


def _entries_ldif(users: Mapping[str, bytes], prohibited: frozenset[str], password: str) -> str:
    entries = [
        f"dn: {SUFFIX}\nobjectClass: dcObject\nobjectClass: organization\ndc: example\no: hkp\n",
        f"dn: {PEOPLE}\nobjectClass: organizationalUnit\nou: people\n",
        f"dn: ou=services,{SUFFIX}\nobjectClass: organizationalUnit\nou: services\n",
        f"dn: {HKS_DN}\nobjectClass: organizationalRole\nobjectClass: simpleSecurityObject\n"
        f"cn: hkp-hks\nuserPassword: {password}\n",
    ]
    for nai, hmk in users.items():
        entry = (
            f"dn: uid={nai},{PEOPLE}\nobjectClass: account\nobjectClass: hkpMobileNode\n"
            f"uid: {nai}\nhkpHandoverMasterKey: 0x{hmk.hex()}\n"
        )
        if nai in prohibited:
            entry += "hkpAuthorization: Prohibit\n"
        entries.append(entry)
    return "\n".join(entries)


class SlapdServer(PrivateServer):
    program = "slapd"

    def __init__(
        self,
        work_dir: str | os.PathLike[str],
        *,
        users: Mapping[str, bytes] | None = None,
        prohibited: frozenset[str] = frozenset(),
        address: str = "127.0.0.1",
        port: int | None = None,
        extra_ldif: str = "",
    ) -> None:
        super().__init__()
        self.work_dir = Path(work_dir).resolve()
        self.extra_ldif = extra_ldif  # more entries, e.g. mods-config/ldap/hkp/example.ldif
        self.users = dict(users or {})
        self.prohibited = prohibited
        self.address = address
        self.port = port if port is not None else free_port(address, socket.SOCK_STREAM)
        self.bind_dn = HKS_DN
        self.bind_password = secrets.token_urlsafe(12)
        self.base_dn = SUFFIX
        self.run_as = SLAPD_USER if os.geteuid() == 0 else None

    @property
    def uri(self) -> str:
        return f"ldap://{self.address}:{self.port}"

    @property
    def log_path(self) -> Path:
        return self.work_dir / "slapd.log"

    def prepare(self) -> None:
        """Build cn=config and the database offline (slapadd), from scratch."""
        shutil.rmtree(self.work_dir, ignore_errors=True)
        config_dir, data_dir = self.work_dir / "slapd.d", self.work_dir / "data"
        for path in (config_dir, data_dir):
            path.mkdir(parents=True)
        (self.work_dir / "config.ldif").write_text(
            _config_ldif(self.work_dir, data_dir, secrets.token_urlsafe(12))
        )
        (self.work_dir / "data.ldif").write_text(
            _entries_ldif(self.users, self.prohibited, self.bind_password) + "\n" + self.extra_ldif
        )
        for args in (
            [SLAPADD, "-n", "0", "-F", config_dir, "-l", self.work_dir / "config.ldif"],
            [SLAPADD, "-n", "1", "-F", config_dir, "-l", self.work_dir / "data.ldif"],
        ):
            result = subprocess.run(
                [str(a) for a in args], capture_output=True, text=True, timeout=60, check=False
            )
            if result.returncode != 0:
                raise RuntimeError(f"slapadd failed:\n{result.stdout}{result.stderr}")
        if self.run_as is not None:
            entry = pwd.getpwnam(self.run_as)
            for root, dirs, files in os.walk(self.work_dir):
                for name in [root, *(os.path.join(root, n) for n in dirs + files)]:
                    os.chown(name, entry.pw_uid, entry.pw_gid)
        os.chmod(self.work_dir, 0o755)  # noqa: S103 - holds no secret readable by others

    # PrivateServer: slapd in the foreground, ready once it accepts connections.

    def command(self) -> list[str]:
        args = [SLAPD, "-d", "0", "-h", self.uri + "/", "-F", str(self.work_dir / "slapd.d")]
        if self.run_as is not None:
            args += ["-u", self.run_as, "-g", self.run_as]
        return args

    def answers(self) -> bool:
        try:
            with socket.create_connection((self.address, self.port), timeout=1):
                return True
        except OSError:
            return False

    def search(self, filter_text: str, *attributes: str) -> str:
        """ldapsearch as the HKS's account: the LDIF of what it may see."""
        result = subprocess.run(
            [LDAPSEARCH, "-x", "-LLL", "-o", "ldif-wrap=no", "-H", self.uri, "-D", self.bind_dn,
             "-w", self.bind_password, "-b", self.base_dn, filter_text, *attributes],
            capture_output=True, text=True, timeout=30, check=False,
        )  # fmt: skip
        if result.returncode != 0:
            raise RuntimeError(f"ldapsearch failed: {result.stderr}")
        return result.stdout
