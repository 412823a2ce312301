"""Access-Request attributes into a pyrad packet without re-resolving the dictionary
per packet (issue 14: pyrad's AddAttribute looks every name up, splits tags and
encodes through its generic path on each call, ~10 % of the AR's CPU).

pyrad stays the codec: names resolve through its Dictionary once, values encode with
its `tools.EncodeAttr`, and the packet is built and signed by pyrad. What this adds is
the cache: the (key, type) of each name, and the encoding of values that repeat from
packet to packet (the AR's address, NAS attributes, an MN's CoA). Raw values go in as
pyrad documents for pre-encoded ones (`packet[key] = [raw]`). Attributes pyrad must
transform (tagged, encrypted, TLV sub-attributes) take its own AddAttribute path.
"""

from __future__ import annotations

from pyrad import packet as rpacket
from pyrad import tools
from pyrad.dictionary import Dictionary

from hkp_radius.wire.radius_attrs import AttributeValue

VALUE_CACHE = 4096  # encoded repeating values kept (CoAs of active MNs, NAS values)
Key = int | tuple[int, int]


class AttributeEncoder:
    def __init__(self, dictionary: Dictionary) -> None:
        self.dictionary = dictionary
        self._kinds: dict[str, tuple[Key, str] | None] = {}  # None: pyrad's own path
        self._values: dict[tuple[str, AttributeValue], bytes] = {}

    def _kind(self, name: str) -> tuple[Key, str] | None:
        if name not in self._kinds:
            attribute = self.dictionary.attributes[name]
            plain = not (attribute.has_tag or attribute.encrypt or attribute.is_sub_attribute)
            key: Key = attribute.code
            if attribute.vendor:
                key = (self.dictionary.vendors.GetForward(attribute.vendor), attribute.code)
            self._kinds[name] = (key, attribute.type) if plain else None
        return self._kinds[name]

    def add(self, packet: rpacket.Packet, name: str, value: AttributeValue) -> None:
        kind = self._kind(name)
        if kind is None:
            packet.AddAttribute(name, value)
            return
        key, data_type = kind
        if data_type == "octets" and isinstance(value, bytes):
            raw = value  # the Mobility Header chunks: as they are
        else:
            cached = self._values.get((data_type, value))
            if cached is None:
                cached = tools.EncodeAttr(data_type, value)
                if len(self._values) >= VALUE_CACHE:
                    self._values.clear()  # a new set of MNs: start again
                self._values[(data_type, value)] = cached
            raw = cached
        packet.setdefault(key, []).append(raw)
