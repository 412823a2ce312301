-- hkp-radius: the table mods-available/hkp_sql reads, in SQLite (dialect = "sqlite").
-- radcheck is FreeRADIUS's stock table (mods-config/sql/main/sqlite/schema.sql).
CREATE TABLE IF NOT EXISTS radcheck (
	id INTEGER PRIMARY KEY AUTOINCREMENT,
	username varchar(64) NOT NULL default '',
	attribute varchar(64) NOT NULL default '',
	op char(2) NOT NULL DEFAULT '==',
	value varchar(253) NOT NULL default ''
);
CREATE INDEX IF NOT EXISTS check_username ON radcheck(username);
