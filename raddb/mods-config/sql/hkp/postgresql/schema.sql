-- hkp-radius: the tables mods-available/hkp_sql reads, in PostgreSQL.
-- radcheck is FreeRADIUS's stock table (mods-config/sql/main/postgresql/schema.sql):
-- an existing one serves as it is.
CREATE TABLE IF NOT EXISTS radcheck (
	id		serial PRIMARY KEY,
	UserName	text NOT NULL DEFAULT '',
	Attribute	text NOT NULL DEFAULT '',
	op		VARCHAR(2) NOT NULL DEFAULT '==',
	Value		text NOT NULL DEFAULT ''
);
CREATE INDEX IF NOT EXISTS radcheck_UserName ON radcheck (UserName, Attribute);

-- The shared replay state of replay_store = postgresql (mods-available/hkp_hks).
-- The HKS creates it itself when its role may; otherwise create it here.
CREATE TABLE IF NOT EXISTS hkp_replay (
	nai		bytea PRIMARY KEY,
	last_timestamp	bytea NOT NULL CHECK (length(last_timestamp) = 8)
);
