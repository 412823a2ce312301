-- Wireshark dissector for the handover keying messages of
-- draft-vidya-mipshop-handover-keys-aaa-04 under the hkp-radius wire profile v1.1
-- (docs/PROFILE.md P1, P2): HKReq and HKResp, Mobility Header types 250/251, and their
-- options (Handover Nonce 250, MAC 251, Timestamp 252, Mobile Node Identifier 8).
--
-- Load it:  wireshark -X lua_script:wireshark/hkp.lua   (or tshark -X ...), or copy it
-- to ~/.local/lib/wireshark/plugins/. The code points are preferences (Edit >
-- Preferences > Protocols > HKP, or tshark -o hkp.hkreq_type:240): set them to what
-- [code_points] of hkp-ar and mods-available/hkp_hks use.
--
-- Raw IPv6 (Next Header 135): our two MH types are decoded here, every other MH type
-- goes on to Wireshark's own Mobile IPv6 dissector. UDP (PROFILE P9): the payload of
-- port 54135 (a preference) is one Mobility Header.

local hkp = Proto("hkp", "Handover Keying (draft-vidya-mipshop-handover-keys-aaa-04)")

hkp.prefs.hkreq_type = Pref.uint("HKReq MH Type", 250, "PROFILE P1 TBA1")
hkp.prefs.hkresp_type = Pref.uint("HKResp MH Type", 251, "PROFILE P1 TBA2")
hkp.prefs.nonce_option = Pref.uint("Handover Nonce option type", 250, "PROFILE P1")
hkp.prefs.mac_option = Pref.uint("MAC option type", 251, "PROFILE P1")
hkp.prefs.timestamp_option = Pref.uint("Timestamp option type", 252, "PROFILE P1")
hkp.prefs.mn_id_option = Pref.uint("Mobile Node Identifier option type", 8, "RFC 4283")
hkp.prefs.udp_port = Pref.uint("UDP port", 54135, "PROFILE P9 UDP encapsulation")

local status_names = {
    [0] = "Success", [130] = "CoA_AUTH_FAILED", [131] = "ADMINISTRATIVELY_PROHIBITED",
    [132] = "HK_VERIFY_FAILED", [135] = "TIMESTAMP_REQD", [136] = "INVALID_PRF_ALG",
    [137] = "INVALID_MAC_ALG", [138] = "INVALID_TIMESTAMP",
}
local prf_names = { [1] = "HMAC-SHA1", [2] = "HMAC-SHA256" }
local nonce_subtypes = { [1] = "HKS-Nonce", [2] = "MN-Nonce" }
local mac_subtypes = { [1] = "MN-HKS MAC (HIK)", [2] = "MN-AR MAC (HK)" }

local f = {
    proto = ProtoField.uint8("hkp.payload_proto", "Payload Proto"),
    hlen = ProtoField.uint8("hkp.header_len", "Header Len (8-octet units - 1)"),
    type = ProtoField.uint8("hkp.type", "MH Type"),
    type_name = ProtoField.string("hkp.message", "Message"),
    checksum = ProtoField.uint16("hkp.checksum", "Checksum", base.HEX),
    msgid = ProtoField.uint8("hkp.message_id", "Message ID"),
    v = ProtoField.bool("hkp.v", "V (returning MN)", 8, nil, 0x80),
    prf = ProtoField.uint8("hkp.prf", "PRF", base.DEC, prf_names, 0x70),
    coa = ProtoField.ipv6("hkp.coa", "Key Care-of Address"),
    status = ProtoField.uint8("hkp.status", "Status Code", base.DEC, status_names),
    lifetime = ProtoField.uint16("hkp.lifetime", "Lifetime (s)"),
    spi = ProtoField.uint32("hkp.spi", "SPI"),
    opt_type = ProtoField.uint8("hkp.option.type", "Option Type"),
    opt_len = ProtoField.uint8("hkp.option.length", "Option Length"),
    opt_name = ProtoField.string("hkp.option", "Option"),
    nonce_subtype = ProtoField.uint8("hkp.nonce.subtype", "Nonce Subtype", base.DEC, nonce_subtypes),
    nonce = ProtoField.bytes("hkp.nonce", "Nonce"),
    mac_subtype = ProtoField.uint8("hkp.mac.subtype", "MAC Subtype", base.DEC, mac_subtypes),
    mac_at = ProtoField.uint8("hkp.mac.algorithm", "Algorithm Type", base.DEC, prf_names, 0x0F),
    mac_auth = ProtoField.bytes("hkp.mac.auth", "AUTH"),
    timestamp = ProtoField.uint64("hkp.timestamp", "Timestamp (NTP)", base.HEX),
    mn_id_subtype = ProtoField.uint8("hkp.mn_id.subtype", "MN-ID Subtype"),
    nai = ProtoField.string("hkp.nai", "NAI"),
    opt_data = ProtoField.bytes("hkp.option.data", "Data"),
}
hkp.fields = f

local ef_malformed = ProtoExpert.new("hkp.malformed", "Malformed HKP message",
    expert.group.MALFORMED, expert.severity.ERROR)
hkp.experts = { ef_malformed }

local function option_name(t)
    local p = hkp.prefs
    if t == 0 then return "Pad1" elseif t == 1 then return "PadN"
    elseif t == p.nonce_option then return "Handover Nonce"
    elseif t == p.mac_option then return "MAC"
    elseif t == p.timestamp_option then return "Timestamp"
    elseif t == p.mn_id_option then return "Mobile Node Identifier"
    end
    return "Unknown (" .. t .. ")"
end

local function dissect_options(buf, tree, offset)
    local names = {}
    local p = hkp.prefs
    while offset < buf:len() do
        local t = buf(offset, 1):uint()
        if t == 0 then  -- Pad1 is one octet, no length
            tree:add(f.opt_name, buf(offset, 1), "Pad1")
            offset = offset + 1
        else
            if offset + 2 > buf:len() then
                tree:add_proto_expert_info(ef_malformed, "option header runs past the end")
                return names
            end
            local len = buf(offset + 1, 1):uint()
            if offset + 2 + len > buf:len() then
                tree:add_proto_expert_info(ef_malformed, "option runs past the end")
                return names
            end
            local body = offset + 2
            local name = option_name(t)
            if t == p.nonce_option and len >= 2 then
                name = nonce_subtypes[buf(body, 1):uint()] or name
            elseif t == p.mac_option and len >= 2 then
                name = (buf(body, 1):uint() == 2) and "MN-AR MAC" or "MN-HKS MAC"
            end
            local sub = tree:add(f.opt_name, buf(offset, 2 + len), name)
            sub:add(f.opt_type, buf(offset, 1))
            sub:add(f.opt_len, buf(offset + 1, 1))
            if t == p.nonce_option and len >= 2 then
                sub:add(f.nonce_subtype, buf(body, 1))
                sub:add(f.nonce, buf(body + 2, len - 2))
            elseif t == p.mac_option and len >= 2 then
                sub:add(f.mac_subtype, buf(body, 1))
                sub:add(f.mac_at, buf(body + 1, 1))
                sub:add(f.mac_auth, buf(body + 2, len - 2))
            elseif t == p.timestamp_option and len == 8 then
                sub:add(f.timestamp, buf(body, 8))
            elseif t == p.mn_id_option and len >= 1 then
                sub:add(f.mn_id_subtype, buf(body, 1))
                sub:add(f.nai, buf(body + 1, len - 1))
            elseif t ~= 1 and len > 0 then
                sub:add(f.opt_data, buf(body, len))
            end
            if t ~= 1 then names[#names + 1] = name end
            offset = body + len
        end
    end
    return names
end

local function is_ours(buf)
    if buf:len() < 8 then return false end
    local t = buf(2, 1):uint()
    return t == hkp.prefs.hkreq_type or t == hkp.prefs.hkresp_type
end

local function dissect_hkp(buf, pinfo, tree)
    local t = buf(2, 1):uint()
    local request = (t == hkp.prefs.hkreq_type)
    local fixed = request and 24 or 16
    local name = request and "HKReq" or "HKResp"
    pinfo.cols.protocol = "HKP"
    local root = tree:add(hkp, buf(), "Handover Keying, " .. name)
    root:add(f.proto, buf(0, 1))
    root:add(f.hlen, buf(1, 1))
    root:add(f.type, buf(2, 1)):append_text(" (" .. name .. ")")
    root:add(f.type_name, buf(2, 1), name)
    root:add(f.checksum, buf(4, 2))
    if buf:len() < fixed then
        root:add_proto_expert_info(ef_malformed, name .. " shorter than its fixed part")
        return buf:len()
    end
    local msgid = buf(6, 1):uint()
    root:add(f.msgid, buf(6, 1))
    root:add(f.v, buf(7, 1))
    root:add(f.prf, buf(7, 1))
    local info = name .. " id=" .. msgid
    if request then
        root:add(f.coa, buf(8, 16))
    else
        local status = buf(8, 1):uint()
        root:add(f.status, buf(8, 1))
        root:add(f.lifetime, buf(10, 2))
        root:add(f.spi, buf(12, 4))
        info = info .. " status=" .. (status_names[status] or status) .. " spi=" .. buf(12, 4):uint()
    end
    local names = dissect_options(buf, root, fixed)
    pinfo.cols.info = info .. " [" .. table.concat(names, ", ") .. "]"
    return buf:len()
end

function hkp.dissector(buf, pinfo, tree)
    if not is_ours(buf) then return 0 end
    return dissect_hkp(buf, pinfo, tree)
end

-- Raw IPv6: take Next Header 135 over, hand what is not ours to Wireshark's mip6.
local ip_proto = DissectorTable.get("ip.proto")
local mip6 = ip_proto:get_dissector(135)
local over_ipv6 = Proto("hkp_mh", "Mobility Header (HKP-aware)")
function over_ipv6.dissector(buf, pinfo, tree)
    if is_ours(buf) then return dissect_hkp(buf, pinfo, tree) end
    if mip6 ~= nil then return mip6:call(buf, pinfo, tree) end
    return 0
end
ip_proto:add(135, over_ipv6)

local registered_port = nil
function hkp.prefs_changed()
    local udp = DissectorTable.get("udp.port")
    if registered_port ~= nil then udp:remove(registered_port, hkp) end
    registered_port = hkp.prefs.udp_port
    udp:add(registered_port, hkp)
end
DissectorTable.get("udp.port"):add(hkp.prefs.udp_port, hkp)
registered_port = hkp.prefs.udp_port
