-- hkp-radius: one MN in radcheck (mods-available/hkp_sql). The HMK is '0x' and at
-- least 64 octets in hex (draft §6.1); this one is an example: generate your own,
-- e.g. python3 -c 'import secrets; print("0x" + secrets.token_hex(64))'.
INSERT INTO radcheck (username, attribute, op, value) VALUES
	('mn@example.net', 'HKP-HMK', ':=',
	 '0x000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f202122232425262728292a2b2c2d2e2f303132333435363738393a3b3c3d3e3f');
-- Optional: refuse an MN by operator policy (ADMINISTRATIVELY_PROHIBITED, PROFILE P8).
-- INSERT INTO radcheck (username, attribute, op, value)
--	VALUES ('barred@example.net', 'HKP-Authorization', ':=', 'Prohibit');
