"""A handover topology in network namespaces (as root): one namespace per AR and one for
the MN; each AR has its own access link to the MN (a veth pair, its own /64) and all ARs
share a backbone (a bridge in its own namespace), over which they route each other's
access prefixes. The HKS stays in the root namespace (the ARs speak RADIUS from there).

The MN is attached to one access link at a time: `attach(name)` takes its other links
down (their addresses go with them, as on a real move) and brings that one up with the
MN's CoA for it and a default route through its AR. Names carry a random suffix; the
namespaces (and with them every veth and the bridge) are deleted by `destroy`.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass, field

from . import netns
from .netns import NetnsError, _ip, _no_dad, _wait_link_ready

PREFIX = "fd00:1ab"  # ULA (RFC 4193); each lab draws a random 16-bit subnet block
MN_HOST = 0x10  # the MN's interface identifier on every access link
AR_HOST = 1


@dataclass(frozen=True)
class AccessRouterNode:
    name: str
    namespace: str
    address: str  # on its access link: the AR-ID
    backbone_address: str
    access_prefix: str  # "<prefix>::/64"
    mn_device: str  # the MN's veth on this link
    mn_address: str  # the MN's CoA on this link


@dataclass
class HandoverTopology:
    mn_ns: str
    backbone_ns: str
    routers: dict[str, AccessRouterNode] = field(default_factory=dict)
    attached: str | None = None

    def names(self) -> list[str]:
        return [self.mn_ns, self.backbone_ns, *(r.namespace for r in self.routers.values())]

    def attach(self, name: str) -> AccessRouterNode:
        """Move the MN to `name`'s access link."""
        target = self.routers[name]
        for other in self.routers.values():
            if other.name != name:
                _ip("-n", self.mn_ns, "link", "set", other.mn_device, "down")
        _ip("-n", self.mn_ns, "link", "set", target.mn_device, "up")
        _ip("-n", self.mn_ns, "-6", "addr", "replace", f"{target.mn_address}/64",
            "dev", target.mn_device, "nodad")  # fmt: skip
        _ip("-n", self.mn_ns, "-6", "route", "replace", "default", "via", target.address,
            "dev", target.mn_device)  # fmt: skip
        _wait_link_ready(self.mn_ns, target.mn_device)
        _wait_link_ready(target.namespace, "access")
        self.attached = name
        return target


def _sysctl(namespace: str, key: str, value: str) -> None:
    path = "/proc/sys/" + key.replace(".", "/")
    try:
        with netns.inside(namespace), open(path, "w") as knob:
            knob.write(value)
    except OSError as exc:
        raise NetnsError(f"{namespace}: cannot set {key}: {exc}") from None


def create(router_names: list[str], prefix: str = "hkpho") -> HandoverTopology:
    """Namespaces, links and routes for `router_names` (at most 250 ARs)."""
    suffix = secrets.token_hex(3)
    block = int(suffix, 16) & 0xFF
    topology = HandoverTopology(f"{prefix}-mn-{suffix}", f"{prefix}-bb-{suffix}")
    created: list[str] = []
    try:
        for name in (topology.mn_ns, topology.backbone_ns):
            _ip("netns", "add", name)
            created.append(name)
            _ip("-n", name, "link", "set", "lo", "up")
        bb = topology.backbone_ns
        _ip("-n", bb, "link", "add", "bb", "type", "bridge")
        _ip("-n", bb, "link", "set", "bb", "up")
        backbone_net = f"{PREFIX}:{block:x}ff::"
        for index, name in enumerate(router_names):
            namespace = f"{prefix}-{index}-{suffix}"
            _ip("netns", "add", namespace)
            created.append(namespace)
            _ip("-n", namespace, "link", "set", "lo", "up")
            net = f"{PREFIX}:{block:x}{index:02x}::"
            router = AccessRouterNode(
                name=name,
                namespace=namespace,
                address=f"{net}{AR_HOST:x}",
                backbone_address=f"{backbone_net}{index + 1:x}",
                access_prefix=f"{net}/64",
                mn_device=f"mn-{index}",
                mn_address=f"{net}{MN_HOST:x}",
            )
            _ip("-n", topology.mn_ns, "link", "add", router.mn_device, "type", "veth",
                "peer", "name", "access", "netns", namespace)  # fmt: skip
            _ip("-n", namespace, "link", "add", "backbone", "type", "veth",
                "peer", "name", f"bb-{index}", "netns", bb)  # fmt: skip
            _ip("-n", bb, "link", "set", f"bb-{index}", "master", "bb", "up")
            _no_dad(topology.mn_ns, router.mn_device)
            for device in ("access", "backbone"):
                _no_dad(namespace, device)
            _sysctl(namespace, "net.ipv6.conf.all.forwarding", "1")
            _ip("-n", namespace, "-6", "addr", "add", f"{router.address}/64", "dev", "access",
                "nodad")  # fmt: skip
            _ip("-n", namespace, "-6", "addr", "add", f"{router.backbone_address}/64",
                "dev", "backbone", "nodad")  # fmt: skip
            for device in ("access", "backbone"):
                _ip("-n", namespace, "link", "set", device, "up")
            topology.routers[name] = router
        for router in topology.routers.values():
            _wait_link_ready(router.namespace, "backbone")
            for other in topology.routers.values():
                if other.name != router.name:
                    _ip("-n", router.namespace, "-6", "route", "add", other.access_prefix,
                        "via", other.backbone_address)  # fmt: skip
    except NetnsError:
        netns.destroy(created)
        raise
    return topology


def destroy(topology: HandoverTopology) -> None:
    netns.destroy(topology.names())
