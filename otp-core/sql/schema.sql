-- pam_otp: the fleet database (store = "postgresql"), schema version 3.
--
-- Sent whole by `otp-enroll db init` (one transaction: it applies
-- entirely or not at all) with the database owner's connection. Running it
-- again changes nothing: tables, columns and the settings row are created
-- only when missing, functions are replaced by the same text, roles are
-- made once. The same text upgrades a version 1 or 2 database in place:
-- what later versions added is created when missing, and everything else
-- stays, its data included (tests/tests/pg_audit.rs runs it over a
-- populated version 1 made by tests/fixtures/schema-v1.sql, and
-- tests/tests/pg_lifecycle.rs over a populated version 2 made by
-- tests/fixtures/schema-v2.sql).
--
-- Version 2 added the audit table (below, "audit"), its retention
-- setting, and two parameters of verify() (the PAM service and remote
-- host the module read): the version 1 verify() keeps working for one
-- version, so hosts still running a version 1 module log in as before
-- (their rows have no service). Version 3 may drop it.
--
-- Version 3 added a token's lifecycle (issue 31): `disabled`,
-- `not_before`, `expires` on tokens, which verify_at applies with the time
-- it is given (a host never filters tokens), and a verdict 'inactive' for
-- a code right only for a token that accepts nothing now. A host of
-- version 3 calls verify_code(), which says why; version 2's verify()
-- stays for hosts not yet upgraded and answers 'wrong' for it. Grace is
-- decided here too: per PAM service, by the database's own period
-- (settings.grace_period; a host may ask for less) and clock, each entry
-- naming the service and the host role that wrote it; login_info() of
-- version 3 says whether it holds. Version 2's login_info() gives a
-- version 2 host no entries any more (it would apply its own period to
-- any service's), and entries without a service count as expired.
-- Version 3 also keeps the temporary code of a lost phone
-- (pam_otp.temp_codes, otp-enroll temp-code): verify_at accepts it
-- whatever the tokens' state ('temp_code'; 'temp_code_gone' when it is
-- used up or expired), and a live one counts as a token in login_info
-- and enroll(). Version 2's verify() calls an accepted one 'scratch'.
-- Exemptions (otp-enroll exempt) are kept here too (table exemptions,
-- written only by admin_set_exemption, which stamps `granted` with this
-- database's clock and refuses an end past settings.max_exemption days
-- after it); login_info() gives a host the one that holds in the query
-- it makes anyway. A pending mark records the uid of the account it was
-- set for (users.uid), and the admin role can clear the tally of an
-- account without a token (admin_clear_unenrolled) and list what each
-- name holds with its uid (admin_owners, otp-enroll remove --orphans).
--
-- Seeds never leave this database. Hosts connect as login roles that are
-- members of pam_otp_host, which has no privilege on any table: it may only
-- call the functions below, which run as their owner (SECURITY DEFINER)
-- with a fixed search_path, so a caller cannot shadow anything they use.
-- A host can ask whether a code is right (the check, and the record of its
-- use, happen here, in one transaction under the user's row lock: a code is
-- accepted once across every host, and failures from all hosts count
-- towards one rate limit), and create a first token for a user who has
-- none or is pending re-enrollment. pam_otp_admin (otp-enroll as root) may
-- also read and replace whole records and the token inventory.
--
-- The database's clock decides, not the host's: every host then agrees on
-- the TOTP step, the lock and the grace period. Each public function reads
-- it and calls an *_at variant with the time as a parameter; the *_at
-- variants are granted to nobody (tests call them as the owner with a
-- fixed time).
--
-- The semantics are those of otp-core/src/verify.rs, rate_limit.rs and
-- grace.rs, line for line; tests/tests/pg_schema.rs runs the same
-- sequences through both and compares.

BEGIN;

-- A dedicated schema holds everything, pgcrypto (hmac) included: the
-- functions' search_path then names nothing anyone else can write to.
CREATE SCHEMA IF NOT EXISTS pam_otp;

-- A database made by a newer pam_otp is left alone (otp-enroll checks
-- first; this holds for the script sent by any other means too).
DO $$
BEGIN
    -- (Nested: the inner query is planned only once the table exists.)
    IF to_regclass('pam_otp.meta') IS NOT NULL THEN
        IF EXISTS (SELECT 1 FROM pam_otp.meta WHERE version > 3) THEN
            RAISE EXCEPTION 'schema pam_otp is newer than version 3: use the pam_otp that made it';
        END IF;
    END IF;
END
$$;

DO $$
DECLARE
    where_it_is text;
BEGIN
    SELECT n.nspname INTO where_it_is
      FROM pg_extension e JOIN pg_namespace n ON n.oid = e.extnamespace
     WHERE e.extname = 'pgcrypto';
    IF where_it_is IS NULL THEN
        CREATE EXTENSION pgcrypto WITH SCHEMA pam_otp;
    ELSIF where_it_is <> 'pam_otp' THEN
        RAISE EXCEPTION 'pgcrypto is installed in schema %, pam_otp needs it in schema pam_otp: use a database of its own for pam_otp', where_it_is;
    END IF;
END
$$;

DO $$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'pam_otp_host') THEN
        CREATE ROLE pam_otp_host NOLOGIN;
    END IF;
    IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'pam_otp_admin') THEN
        CREATE ROLE pam_otp_admin NOLOGIN;
    END IF;
END
$$;

CREATE TABLE IF NOT EXISTS pam_otp.meta (
    one boolean PRIMARY KEY DEFAULT true CHECK (one),
    version integer NOT NULL
);

-- The ceilings of the policy hosts ask for: a compromised host can only
-- tighten them, never widen the window a guesser gets.
CREATE TABLE IF NOT EXISTS pam_otp.settings (
    one boolean PRIMARY KEY DEFAULT true CHECK (one),
    totp_skew integer NOT NULL DEFAULT 1 CHECK (totp_skew BETWEEN 0 AND 10),
    hotp_window integer NOT NULL DEFAULT 10 CHECK (hotp_window BETWEEN 0 AND 1000),
    max_failures integer NOT NULL DEFAULT 3 CHECK (max_failures BETWEEN 1 AND 1000),
    lock_interval bigint NOT NULL DEFAULT 30 CHECK (lock_interval BETWEEN 1 AND 86400)
);
-- Version 2: how many days audit rows are kept at least (the purge
-- deletes only older ones). Only the owner can change it (no role is
-- granted anything on this table): UPDATE pam_otp.settings SET
-- audit_days = 730; never below 30.
ALTER TABLE pam_otp.settings
    ADD COLUMN IF NOT EXISTS audit_days integer NOT NULL DEFAULT 365 CHECK (audit_days >= 30);
-- Version 3: the longest grace period (seconds) any host may apply; a
-- host's grace_period can shorten it, never lengthen it. 0 (the default,
-- as the config's): no grace in the fleet until the owner sets it, e.g.
-- UPDATE pam_otp.settings SET grace_period = 900; at most a day.
ALTER TABLE pam_otp.settings
    ADD COLUMN IF NOT EXISTS grace_period bigint NOT NULL DEFAULT 0 CHECK (grace_period BETWEEN 0 AND 86400);
-- Version 3: the longest exemption (otp-enroll exempt), in days, from
-- when it was granted: admin_set_exemption refuses a longer one and
-- login_info ignores one that is (a row written by other means). 0:
-- exemptions are off. Only the owner can change it: UPDATE
-- pam_otp.settings SET max_exemption = 14; at most 366. A host's
-- max_exemption can shorten it, never lengthen it.
ALTER TABLE pam_otp.settings
    ADD COLUMN IF NOT EXISTS max_exemption integer NOT NULL DEFAULT 30 CHECK (max_exemption BETWEEN 0 AND 366);
INSERT INTO pam_otp.settings (one) VALUES (true) ON CONFLICT (one) DO NOTHING;

-- One row per user with tokens, or pending re-enrollment (otp-enroll reset).
CREATE TABLE IF NOT EXISTS pam_otp.users (
    name text PRIMARY KEY,
    pending boolean NOT NULL DEFAULT false,
    scratch_codes text[] NOT NULL DEFAULT '{}',
    failures integer NOT NULL DEFAULT 0,
    last_failure bigint NOT NULL DEFAULT 0,
    -- [{"from": "10.0.0.1", "at": 1700000000, "service": "sshd", "by":
    -- "web1"}, ...], newest first, at most 16 (service and by: version 3).
    grace jsonb NOT NULL DEFAULT '[]'
);
-- Version 3: the uid of the account the record was made for (written by
-- otp-enroll and by enrollment at login; NULL for a record made before).
-- A host refuses a record whose uid is not the account's: a name deleted
-- and made again (userdel, useradd) inherits nothing.
ALTER TABLE pam_otp.users
    ADD COLUMN IF NOT EXISTS uid bigint CHECK (uid BETWEEN 0 AND 4294967295);

CREATE TABLE IF NOT EXISTS pam_otp.tokens (
    username text NOT NULL REFERENCES pam_otp.users (name) ON DELETE CASCADE,
    position integer NOT NULL,
    id text NOT NULL CHECK (id ~ '^[A-Za-z0-9._-]{1,32}$'),
    type text NOT NULL CHECK (type IN ('totp', 'hotp')),
    secret bytea NOT NULL CHECK (length(secret) BETWEEN 1 AND 128),
    algorithm text NOT NULL CHECK (algorithm IN ('SHA1', 'SHA256', 'SHA512')),
    digits integer NOT NULL CHECK (digits BETWEEN 6 AND 8),
    period bigint NOT NULL CHECK (period > 0),
    counter bigint NOT NULL DEFAULT 0 CHECK (counter BETWEEN 0 AND 9007199254740992),
    serial text,
    created bigint,
    last_step bigint,
    drift bigint NOT NULL DEFAULT 0,
    drift_moved bigint NOT NULL DEFAULT 0,
    last_used bigint,
    PRIMARY KEY (username, id),
    UNIQUE (username, position)
);
-- Version 3: the token's lifecycle (otp-enroll disable / enable / expire,
-- --not-before / --expires; secret_file::Lifecycle). A disabled token, or
-- one outside not_before <= now < expires (Unix seconds), keeps its
-- counter and state and accepts nothing.
ALTER TABLE pam_otp.tokens
    ADD COLUMN IF NOT EXISTS disabled boolean NOT NULL DEFAULT false,
    ADD COLUMN IF NOT EXISTS not_before bigint CHECK (not_before BETWEEN 0 AND 9007199254740992),
    ADD COLUMN IF NOT EXISTS expires bigint CHECK (expires BETWEEN 0 AND 9007199254740992);

-- Version 3: the temporary code of a lost phone (otp-enroll temp-code;
-- secret_file::TempCode), at most one per user: only its salted hash,
-- HMAC-SHA-256 of the 8 digits keyed with a 16-byte salt from the
-- kernel, with its expiry (Unix seconds, exclusive), the logins it still
-- accepts, and who made it when. A table of its own rather than six
-- columns of pam_otp.users: few users ever have one, a row is all of it
-- or none (every column NOT NULL, checked as a secret file's
-- [temp_code] is), and it goes with the user's row (ON DELETE CASCADE).
-- It is read and changed only under the user's row lock (pam_otp.users
-- FOR UPDATE), as the tokens are. A user may have a temporary code and no
-- token (write_record, read_record).
CREATE TABLE IF NOT EXISTS pam_otp.temp_codes (
    username text PRIMARY KEY REFERENCES pam_otp.users (name) ON DELETE CASCADE,
    salt bytea NOT NULL CHECK (length(salt) = 16),
    hash bytea NOT NULL CHECK (length(hash) = 32),
    expires bigint NOT NULL CHECK (expires BETWEEN 0 AND 9007199254740992),
    uses_left integer NOT NULL CHECK (uses_left BETWEEN 0 AND 20),
    created bigint NOT NULL CHECK (created BETWEEN 0 AND 9007199254740992),
    created_by text NOT NULL CHECK (octet_length(created_by) BETWEEN 1 AND 64
                                    AND created_by !~ '[[:cntrl:]]')
);

-- Version 3: the failure tally of an account that has no token (a host
-- says it is an account: under missing = "deny" it is prompted like
-- everyone and every answer is wrong). Counted here, with the settings'
-- limits, as an enrolled user's failures are, so that "Too many failed
-- attempts" does not tell who is enrolled (unenrolled.rs keeps the same
-- tally in a file for the file stores). Only verify_no_token_at writes
-- it; no role is granted anything on it.
CREATE TABLE IF NOT EXISTS pam_otp.unenrolled (
    name text PRIMARY KEY,
    failures integer NOT NULL DEFAULT 0,
    last_failure bigint NOT NULL DEFAULT 0
);

-- Version 3: exemptions (otp-enroll exempt): no code asked of `name`
-- until `until` (Unix seconds), granted at `granted` (this database's
-- clock) by `by` (the role that connected, and what otp-enroll said of
-- its caller) for `reason`, to the account of uid `uid` only (a name
-- deleted and made again inherits nothing). Written only by
-- admin_set_exemption; no role is granted anything on it.
CREATE TABLE IF NOT EXISTS pam_otp.exemptions (
    name text PRIMARY KEY,
    uid bigint NOT NULL CHECK (uid BETWEEN 0 AND 4294967295),
    until bigint NOT NULL,
    granted bigint NOT NULL,
    by text NOT NULL DEFAULT '',
    reason text NOT NULL DEFAULT '',
    CHECK (until > granted)
);

-- The vendor token inventory (otp-enroll inventory): its text, as
-- otp-enroll writes <state_dir>/inventory/tokens.toml for the file stores.
CREATE TABLE IF NOT EXISTS pam_otp.inventory (
    one boolean PRIMARY KEY DEFAULT true CHECK (one),
    doc text NOT NULL
);

-- ---- the audit (version 2) -----------------------------------------------

-- One row per change otp-enroll made (kind 'change'), per verify() a host
-- called (kind 'verify'), and per first token a login or an admin created
-- through enroll() (kind 'enroll'). What the database knows itself it
-- stamps: when (`at`, Unix seconds, its own clock), who (`db_role`, the
-- role that connected: session_user; inside a SECURITY DEFINER function
-- current_user is the owner) and from where (`client_addr`,
-- inet_client_addr(); NULL over a Unix socket). What a client says of
-- itself is in the claimed_* columns, named so: otp-enroll's uid, the
-- login uid it read from /proc/self/loginuid, SUDO_USER, its host name.
--
-- Append-only in practice: the rows are written by the functions below
-- only (SECURITY DEFINER: they run as the owner); no role is granted
-- anything on the table, so only its owner can insert, update, delete or
-- truncate; no function a host or an admin may call changes a row. The
-- purge (audit_purge_at) deletes rows older than settings.audit_days, by
-- the database's clock; it runs when an admin's change is recorded and
-- when db init runs.
CREATE TABLE IF NOT EXISTS pam_otp.audit (
    id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    at bigint NOT NULL,
    kind text NOT NULL CHECK (kind IN ('change', 'verify', 'enroll')),
    db_role text NOT NULL,
    client_addr inet,
    -- change: the otp-enroll command ("remove", "inventory import").
    command text,
    -- The user acted on, or logging in.
    username text,
    token text,
    serial text,
    -- change: what else it said (e.g. how many tokens an import added).
    detail text,
    -- verify: PAM_SERVICE and PAM_RHOST as the host's module read them.
    service text,
    rhost text,
    -- verify: the verdict ('totp', 'hotp', 'scratch', 'temp_code'
    -- (version 3) accepted; 'wrong', 'replay', 'malformed', 'exhausted',
    -- 'locked', 'inactive', 'temp_code_gone' (version 3), 'nothing'
    -- refused);
    -- enroll: 'created'.
    result text,
    claimed_uid bigint,
    claimed_login_uid text,
    claimed_sudo_user text,
    claimed_host text
);
CREATE INDEX IF NOT EXISTS audit_at ON pam_otp.audit (at);
CREATE INDEX IF NOT EXISTS audit_username ON pam_otp.audit (username, id);

INSERT INTO pam_otp.meta (one, version) VALUES (true, 3)
    ON CONFLICT (one) DO UPDATE SET version = EXCLUDED.version;

-- Text a client sent, bounded before it is kept.
CREATE OR REPLACE FUNCTION pam_otp.audit_text(p text)
RETURNS text
LANGUAGE sql IMMUTABLE
SET search_path = pg_catalog, pam_otp, pg_temp
AS $$ SELECT left(p, 256) $$;

-- Deletes the rows older than settings.audit_days at `p_now` (the
-- database's clock: see audit_purge); how many. Granted to nobody.
CREATE OR REPLACE FUNCTION pam_otp.audit_purge_at(p_now bigint)
RETURNS bigint
LANGUAGE plpgsql VOLATILE
SET search_path = pg_catalog, pam_otp, pg_temp
AS $$
DECLARE
    gone bigint;
BEGIN
    DELETE FROM pam_otp.audit a
     WHERE a.at < p_now - (SELECT s.audit_days FROM pam_otp.settings s WHERE s.one)::bigint * 86400;
    GET DIAGNOSTICS gone = ROW_COUNT;
    RETURN gone;
END
$$;

CREATE OR REPLACE FUNCTION pam_otp.audit_purge()
RETURNS bigint
LANGUAGE sql VOLATILE
SET search_path = pg_catalog, pam_otp, pg_temp
AS $$ SELECT pam_otp.audit_purge_at(extract(epoch FROM clock_timestamp())::bigint) $$;

-- ---- codes ---------------------------------------------------------------

-- HOTP (RFC 4226): HMAC of the 8-byte big-endian counter, dynamic
-- truncation, the low `digits` decimal digits. TOTP is HOTP of the step.
CREATE OR REPLACE FUNCTION pam_otp.otp_code(p_key bytea, p_counter bigint, p_digits integer, p_algorithm text)
RETURNS text
LANGUAGE plpgsql IMMUTABLE STRICT
SET search_path = pg_catalog, pam_otp, pg_temp
AS $$
DECLARE
    mac bytea := pam_otp.hmac(int8send(p_counter), p_key, lower(p_algorithm));
    off integer;
    bin bigint;
BEGIN
    off := get_byte(mac, length(mac) - 1) & 15;
    bin := ((get_byte(mac, off) & 127)::bigint << 24)
         | (get_byte(mac, off + 1)::bigint << 16)
         | (get_byte(mac, off + 2)::bigint << 8)
         | get_byte(mac, off + 3)::bigint;
    RETURN lpad((bin % (10::bigint ^ p_digits)::bigint)::text, p_digits, '0');
END
$$;

-- What a person typed, cleaned up as otp::normalize_code does: spaces and
-- dashes ignored, 1 to 10 ASCII digits, else NULL.
CREATE OR REPLACE FUNCTION pam_otp.normalize_code(p_typed text)
RETURNS text
LANGUAGE sql IMMUTABLE
SET search_path = pg_catalog, pam_otp, pg_temp
AS $$
    SELECT CASE WHEN c ~ '^[0-9]{1,10}$' THEN c END
      FROM (SELECT replace(replace(btrim(coalesce(p_typed, ''), E' \t\r\n\f\v'), ' ', ''), '-', '') AS c) t
$$;

-- How long `failures` (at or past max) lock for: interval * 4^(failures -
-- max), at most a day (rate_limit::lock).
CREATE OR REPLACE FUNCTION pam_otp.lock_for(p_failures integer, p_max integer, p_interval bigint)
RETURNS bigint
LANGUAGE sql IMMUTABLE
SET search_path = pg_catalog, pam_otp, pg_temp
AS $$
    SELECT least(p_interval::numeric * power(4::numeric, least(greatest(p_failures - p_max, 0), 16)), 86400)::bigint
$$;

-- ---- what a host calls ---------------------------------------------------

-- When the code that grants grace to a login was accepted: an entry of
-- `p_grace` for the same address and the same PAM service, younger than
-- the shorter of the host's period and the database's (settings), not
-- in the future. NULL: no grace. An entry without a service (written
-- before version 3) never grants it.
CREATE OR REPLACE FUNCTION pam_otp.grace_at(p_grace jsonb, p_service text, p_rhost text, p_period bigint, p_now bigint)
RETURNS bigint
LANGUAGE sql STABLE
SET search_path = pg_catalog, pam_otp, pg_temp
AS $$
    SELECT max((g.value->>'at')::bigint)
      FROM jsonb_array_elements(coalesce(p_grace, '[]'::jsonb)) g,
           (SELECT least(greatest(coalesce(p_period, 0), 0), s.grace_period) AS p
              FROM pam_otp.settings s WHERE s.one) e
     WHERE p_rhost IS NOT NULL AND p_service IS NOT NULL
       AND g.value->>'from' = p_rhost AND g.value->>'service' = p_service
       AND (g.value->>'at')::bigint <= p_now AND p_now - (g.value->>'at')::bigint < e.p
$$;

-- Whether the user has a temporary code that is live at `p_now`: uses
-- left and not expired (secret_file::TempCode::live_at).
CREATE OR REPLACE FUNCTION pam_otp.temp_code_live(p_user text, p_now bigint)
RETURNS boolean
LANGUAGE sql STABLE
SET search_path = pg_catalog, pam_otp, pg_temp
AS $$
    SELECT EXISTS (SELECT 1 FROM pam_otp.temp_codes c
                    WHERE c.username = p_user AND p_now < c.expires AND c.uses_left > 0)
$$;

-- What a login needs first (version 3): whether the user has tokens (a
-- disabled or out-of-date one counts: such a user is refused, never
-- treated as without a token; so does a live temporary code, alone too:
-- secret_file::SecretFile::has_token_at), the first token's digits, whether grace
-- holds for this login (grace_at above) by the database's clock, and the
-- uid the record was made for (the host compares it with the account's;
-- for a pending mark, the uid of the account it was set for). And the
-- user's exemption when it holds at `p_now` (granted <= p_now < until,
-- and no longer than settings.max_exemption days): its columns, all NULL
-- otherwise, so that every name costs the same query and the same
-- answer's shape; the host honours it only for the account of exempt_uid
-- and may shorten it with its own max_exemption.
DO $$
BEGIN
    -- Before exemptions (no exempt_until column): the return type changes.
    IF EXISTS (SELECT 1 FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
                WHERE n.nspname = 'pam_otp' AND p.proname = 'login_info_at'
                  AND p.pronargs = 5 AND NOT ('exempt_until' = ANY (p.proargnames))) THEN
        DROP FUNCTION pam_otp.login_info(text, text, text, bigint);
        DROP FUNCTION pam_otp.login_info_at(text, text, text, bigint, bigint);
    END IF;
END
$$;
CREATE OR REPLACE FUNCTION pam_otp.login_info_at(
    p_user text, p_service text, p_rhost text, p_grace_period bigint, p_now bigint)
RETURNS TABLE (presence text, digits integer, grace_at bigint, uid bigint, now bigint,
               exempt_until bigint, exempt_granted bigint, exempt_by text, exempt_reason text,
               exempt_uid bigint)
LANGUAGE plpgsql STABLE SECURITY DEFINER
SET search_path = pg_catalog, pam_otp, pg_temp
AS $$
DECLARE
    u pam_otp.users%ROWTYPE;
    first_digits integer;
BEGIN
    SELECT * INTO u FROM pam_otp.users WHERE name = p_user;
    SELECT t.digits INTO first_digits FROM pam_otp.tokens t
     WHERE t.username = p_user ORDER BY t.position LIMIT 1;
    presence := CASE WHEN first_digits IS NOT NULL OR pam_otp.temp_code_live(p_user, p_now) THEN 'tokens'
                     WHEN coalesce(u.pending, false) THEN 'pending'
                     ELSE 'nothing' END;
    digits := first_digits;
    grace_at := CASE WHEN presence = 'tokens'
                     THEN pam_otp.grace_at(u.grace, p_service, p_rhost, p_grace_period, p_now) END;
    uid := u.uid;
    now := p_now;
    SELECT e.until, e.granted, e.by, e.reason, e.uid
      INTO exempt_until, exempt_granted, exempt_by, exempt_reason, exempt_uid
      FROM pam_otp.exemptions e, pam_otp.settings s
     WHERE e.name = p_user AND s.one
       AND e.granted <= p_now AND p_now < e.until
       AND e.until - e.granted <= s.max_exemption::bigint * 86400;
    RETURN NEXT;
END
$$;

CREATE OR REPLACE FUNCTION pam_otp.login_info(p_user text, p_service text, p_rhost text, p_grace_period bigint)
RETURNS TABLE (presence text, digits integer, grace_at bigint, uid bigint, now bigint,
               exempt_until bigint, exempt_granted bigint, exempt_by text, exempt_reason text,
               exempt_uid bigint)
LANGUAGE sql STABLE SECURITY DEFINER
SET search_path = pg_catalog, pam_otp, pg_temp
AS $$
    SELECT * FROM pam_otp.login_info_at(p_user, p_service, p_rhost, p_grace_period,
                                        extract(epoch FROM clock_timestamp())::bigint)
$$;

-- Version 2's login_info, what a version 2 module calls: no grace
-- entries any more. Such a module would apply its own period to entries
-- of any service, which is what version 3 stopped; its hosts ask for a
-- code every time until they are upgraded.
CREATE OR REPLACE FUNCTION pam_otp.login_info_at(p_user text, p_now bigint)
RETURNS TABLE (presence text, digits integer, grace jsonb, now bigint)
LANGUAGE sql STABLE SECURITY DEFINER
SET search_path = pg_catalog, pam_otp, pg_temp
AS $$
    SELECT l.presence, l.digits, '[]'::jsonb, l.now
      FROM pam_otp.login_info_at(p_user, NULL, NULL, 0, p_now) l
$$;

CREATE OR REPLACE FUNCTION pam_otp.login_info(p_user text)
RETURNS TABLE (presence text, digits integer, grace jsonb, now bigint)
LANGUAGE sql STABLE SECURITY DEFINER
SET search_path = pg_catalog, pam_otp, pg_temp
AS $$
    SELECT * FROM pam_otp.login_info_at(p_user, extract(epoch FROM clock_timestamp())::bigint)
$$;

-- Why a token accepts nothing at `p_now` (secret_file::Lifecycle::
-- inactive_at): 'disabled', 'not_yet_valid', 'expired', or NULL when it
-- is active (enabled and not_before <= p_now < expires).
CREATE OR REPLACE FUNCTION pam_otp.inactive_why(p_disabled boolean, p_not_before bigint, p_expires bigint, p_now bigint)
RETURNS text
LANGUAGE sql IMMUTABLE
SET search_path = pg_catalog, pam_otp, pg_temp
AS $$
    SELECT CASE WHEN p_disabled THEN 'disabled'
                WHEN p_not_before IS NOT NULL AND p_now < p_not_before THEN 'not_yet_valid'
                WHEN p_expires IS NOT NULL AND p_now >= p_expires THEN 'expired' END
$$;

-- The date that goes with inactive_why: from when a token is valid, or
-- when it expired (NULL for a disabled one).
CREATE OR REPLACE FUNCTION pam_otp.inactive_date(p_why text, p_not_before bigint, p_expires bigint)
RETURNS bigint
LANGUAGE sql IMMUTABLE
SET search_path = pg_catalog, pam_otp, pg_temp
AS $$
    SELECT CASE p_why WHEN 'not_yet_valid' THEN p_not_before WHEN 'expired' THEN p_expires END
$$;

-- Version 2's verify_at (no service, three columns): replaced below.
DROP FUNCTION IF EXISTS pam_otp.verify_at(text, text, text, bigint, integer, integer, integer, bigint, bigint);

-- Checks `p_code` for `p_user` at `p_now` and records what it did: the
-- token's state, the rate limit, the grace address. One row: verdict
-- ('totp', 'hotp', 'scratch', 'temp_code', 'malformed', 'wrong',
-- 'replay', 'exhausted', 'locked', 'inactive', 'temp_code_gone',
-- 'nothing'), the token that accepted (or, for 'inactive', the one the
-- code was right for: NULL for an emergency code), and the step,
-- counter, codes left, uses left ('temp_code') or seconds locked
-- ('inactive', 'temp_code_gone': the date of `why`); `why` says why a
-- token is inactive (inactive_why) or why the temporary code accepts
-- nothing ('used_up', 'expired'); for 'temp_code' it is the code's
-- expiry (Unix seconds, as text). `p_service` is the PAM service the
-- login is for.
--
-- verify.rs's verify() and check(), line for line: a token that is
-- inactive at `p_now` is checked without moving its state and accepts
-- nothing; a code right only for such a token is 'inactive' (refused
-- and counted as a failure); while no token of the user is active, the
-- emergency codes accept nothing either (and are kept). The temporary
-- code accepts whatever the tokens' state, takes one use, and is dropped
-- once used up or expired at the end of any verify that is not 'locked',
-- unless it is all the user has (prune_temp_code).
CREATE OR REPLACE FUNCTION pam_otp.verify_at(
    p_user text, p_code text, p_rhost text, p_grace_period bigint,
    p_totp_skew integer, p_hotp_window integer, p_max_failures integer, p_interval bigint,
    p_service text, p_now bigint)
RETURNS TABLE (verdict text, token text, detail bigint, why text)
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pam_otp, pg_temp
AS $$
DECLARE
    s pam_otp.settings%ROWTYPE;
    u pam_otp.users%ROWTYPE;
    t pam_otp.tokens%ROWTYPE;
    tc pam_otp.temp_codes%ROWTYPE;
    temp_gone text;
    skew integer;
    win integer;
    maxf integer;
    ival bigint;
    code text;
    until bigint;
    replay boolean := false;
    exhausted boolean := false;
    fits boolean := false;
    any_active boolean;
    off_why text;
    off_date bigint;
    t_why text;
    hit_token text;
    hit_why text;
    hit_date bigint;
    now_step bigint;
    drift bigint;
    center bigint;
    found_step bigint;
    cand bigint;
    d integer;
    last_c bigint;
    c bigint;
    offs bigint;
    moved bigint;
    idx integer;
    lock_len bigint;
    max_counter constant bigint := 9007199254740992;
BEGIN
    SELECT * INTO s FROM pam_otp.settings WHERE one;
    skew := least(greatest(coalesce(p_totp_skew, 0), 0), s.totp_skew);
    win := least(greatest(coalesce(p_hotp_window, 0), 0), s.hotp_window);
    -- 0 (off) on a host is not "off" for the fleet: the database's own.
    maxf := CASE WHEN coalesce(p_max_failures, 0) <= 0 THEN s.max_failures
                 ELSE least(p_max_failures, s.max_failures) END;
    ival := greatest(coalesce(p_interval, 0), s.lock_interval);

    -- The lock that makes a code accepted once across all hosts.
    SELECT * INTO u FROM pam_otp.users WHERE name = p_user FOR UPDATE;
    -- (Under that lock: the temporary code is the user's row's.)
    SELECT * INTO tc FROM pam_otp.temp_codes x WHERE x.username = p_user;
    IF u.name IS NULL OR (tc.username IS NULL
                          AND NOT EXISTS (SELECT 1 FROM pam_otp.tokens x WHERE x.username = p_user)) THEN
        verdict := 'nothing';
        RETURN NEXT;
        RETURN;
    END IF;

    -- Rate limit first: a locked user's code is not even looked at.
    IF u.failures >= maxf THEN
        until := u.last_failure + pam_otp.lock_for(u.failures, maxf, ival);
        IF p_now < until THEN
            verdict := 'locked';
            detail := until - p_now;
            RETURN NEXT;
            RETURN;
        END IF;
    END IF;

    -- Whether any token is active, and why the first inactive one (in the
    -- record's order, whatever its length) is not.
    any_active := EXISTS (SELECT 1 FROM pam_otp.tokens x WHERE x.username = p_user
                            AND pam_otp.inactive_why(x.disabled, x.not_before, x.expires, p_now) IS NULL);
    SELECT pam_otp.inactive_why(x.disabled, x.not_before, x.expires, p_now),
           pam_otp.inactive_date(pam_otp.inactive_why(x.disabled, x.not_before, x.expires, p_now),
                                 x.not_before, x.expires)
      INTO off_why, off_date
      FROM pam_otp.tokens x
     WHERE x.username = p_user
       AND pam_otp.inactive_why(x.disabled, x.not_before, x.expires, p_now) IS NOT NULL
     ORDER BY x.position LIMIT 1;

    code := pam_otp.normalize_code(p_code);
    IF code IS NOT NULL THEN
        -- In the record's order, stopping at the first token that accepts.
        FOR t IN SELECT * FROM pam_otp.tokens x
                  WHERE x.username = p_user AND x.digits = length(code)
                  ORDER BY x.position
        LOOP
            fits := true;
            t_why := pam_otp.inactive_why(t.disabled, t.not_before, t.expires, p_now);
            IF t.type = 'totp' THEN
                now_step := p_now / t.period;
                drift := least(greatest(t.drift, -10), 10);
                center := greatest(now_step + drift, 0);
                found_step := NULL;
                -- Nearest first: center, center-1, center+1, ...
                IF pam_otp.otp_code(t.secret, center, t.digits, t.algorithm) = code THEN
                    found_step := center;
                ELSE
                    FOR d IN 1..skew LOOP
                        cand := center - d;
                        IF cand >= 0 AND pam_otp.otp_code(t.secret, cand, t.digits, t.algorithm) = code THEN
                            found_step := cand;
                            EXIT;
                        END IF;
                        cand := center + d;
                        IF pam_otp.otp_code(t.secret, cand, t.digits, t.algorithm) = code THEN
                            found_step := cand;
                            EXIT;
                        END IF;
                    END LOOP;
                END IF;
                CONTINUE WHEN found_step IS NULL;
                -- An inactive token: right (even as a replay), but its
                -- state does not move and it accepts nothing.
                IF t_why IS NOT NULL THEN
                    IF hit_why IS NULL THEN
                        hit_token := t.id;
                        hit_why := t_why;
                        hit_date := pam_otp.inactive_date(t_why, t.not_before, t.expires);
                    END IF;
                    CONTINUE;
                END IF;
                IF t.last_step IS NOT NULL AND found_step <= t.last_step THEN
                    replay := true;
                    CONTINUE;
                END IF;
                -- Follow a device whose clock is off: one step towards
                -- where the code was found, at most once a day, within ±10.
                offs := found_step - now_step;
                moved := least(greatest(drift + sign(offs - drift)::bigint, -10), 10);
                IF moved <> drift AND (t.drift_moved = 0 OR p_now >= t.drift_moved + 86400) THEN
                    UPDATE pam_otp.tokens x SET last_step = found_step, drift = moved,
                           drift_moved = p_now, last_used = p_now
                     WHERE x.username = p_user AND x.id = t.id;
                ELSE
                    UPDATE pam_otp.tokens x SET last_step = found_step, drift = drift_of(t.drift),
                           last_used = p_now
                     WHERE x.username = p_user AND x.id = t.id;
                END IF;
                UPDATE pam_otp.users x SET failures = 0, last_failure = 0 WHERE x.name = p_user;
                PERFORM pam_otp.record_grace(p_user, p_rhost, p_service, p_grace_period, p_now);
                PERFORM pam_otp.prune_temp_code(p_user, p_now);
                verdict := 'totp';
                token := t.id;
                detail := found_step;
                RETURN NEXT;
                RETURN;
            ELSE
                last_c := least(t.counter + win, max_counter - 1);
                IF t.counter > last_c THEN
                    IF t_why IS NULL THEN
                        exhausted := true;
                    END IF;
                    CONTINUE;
                END IF;
                found_step := NULL;
                FOR c IN t.counter..last_c LOOP
                    IF pam_otp.otp_code(t.secret, c, t.digits, t.algorithm) = code THEN
                        found_step := c;
                        EXIT;
                    END IF;
                END LOOP;
                IF t_why IS NOT NULL THEN
                    IF found_step IS NOT NULL AND hit_why IS NULL THEN
                        hit_token := t.id;
                        hit_why := t_why;
                        hit_date := pam_otp.inactive_date(t_why, t.not_before, t.expires);
                    END IF;
                    CONTINUE;
                END IF;
                IF found_step IS NULL THEN
                    IF t.counter >= max_counter THEN
                        exhausted := true;
                    END IF;
                    CONTINUE;
                END IF;
                UPDATE pam_otp.tokens x SET counter = found_step + 1, last_used = p_now
                 WHERE x.username = p_user AND x.id = t.id;
                UPDATE pam_otp.users x SET failures = 0, last_failure = 0 WHERE x.name = p_user;
                PERFORM pam_otp.record_grace(p_user, p_rhost, p_service, p_grace_period, p_now);
                PERFORM pam_otp.prune_temp_code(p_user, p_now);
                verdict := 'hotp';
                token := t.id;
                detail := found_step;
                RETURN NEXT;
                RETURN;
            END IF;
        END LOOP;

        -- The temporary code of a lost phone: whatever the tokens' state
        -- (that is its point: the lost phone is disabled). Tried before
        -- emergency codes, which otp-enroll temp-code never makes it equal
        -- to. The comparison of the digests is not constant-time, unlike
        -- verify.rs's: what it could leak is how many leading bytes of
        -- HMAC-SHA-256(salt, guess) equal the stored hash, and without the
        -- 128-bit salt (which never leaves this database) a guesser can
        -- neither compute nor steer that digest, so it tells nothing about
        -- the code; each guess is one failure of the rate limit besides.
        IF length(code) = 8 AND tc.username IS NOT NULL
           AND pam_otp.hmac(convert_to(code, 'UTF8'), tc.salt, 'sha256') = tc.hash THEN
            IF p_now >= tc.expires THEN
                temp_gone := 'expired';
            ELSIF tc.uses_left <= 0 THEN
                temp_gone := 'used_up';
            ELSE
                UPDATE pam_otp.temp_codes x SET uses_left = tc.uses_left - 1 WHERE x.username = p_user;
                UPDATE pam_otp.users x SET failures = 0, last_failure = 0 WHERE x.name = p_user;
                PERFORM pam_otp.record_grace(p_user, p_rhost, p_service, p_grace_period, p_now);
                PERFORM pam_otp.prune_temp_code(p_user, p_now);
                verdict := 'temp_code';
                detail := tc.uses_left - 1;
                why := tc.expires::text;
                RETURN NEXT;
                RETURN;
            END IF;
        END IF;

        -- Emergency codes: 8 digits, each once; while no token is active
        -- they accept nothing (and stay).
        IF length(code) = 8 THEN
            idx := array_position(u.scratch_codes, code);
            IF any_active THEN
                IF idx IS NOT NULL THEN
                    UPDATE pam_otp.users x
                       SET scratch_codes = u.scratch_codes[:idx - 1] || u.scratch_codes[idx + 1:],
                           failures = 0, last_failure = 0
                     WHERE x.name = p_user;
                    PERFORM pam_otp.record_grace(p_user, p_rhost, p_service, p_grace_period, p_now);
                    PERFORM pam_otp.prune_temp_code(p_user, p_now);
                    verdict := 'scratch';
                    detail := coalesce(array_length(u.scratch_codes, 1), 1) - 1;
                    RETURN NEXT;
                    RETURN;
                END IF;
            ELSIF off_why IS NOT NULL AND idx IS NOT NULL THEN
                verdict := 'inactive';
                why := off_why;
                detail := off_date;
            END IF;
        END IF;
    END IF;

    IF verdict IS NULL AND temp_gone IS NOT NULL THEN
        verdict := 'temp_code_gone';
        why := temp_gone;
        detail := CASE WHEN temp_gone = 'expired' THEN tc.expires END;
    END IF;
    IF verdict IS NULL THEN
        IF hit_why IS NOT NULL AND NOT replay AND NOT exhausted THEN
            verdict := 'inactive';
            token := hit_token;
            why := hit_why;
            detail := hit_date;
        ELSE
            verdict := CASE WHEN replay THEN 'replay'
                            WHEN exhausted THEN 'exhausted'
                            WHEN code IS NOT NULL AND (fits OR length(code) = 8) THEN 'wrong'
                            ELSE 'malformed' END;
        END IF;
    END IF;
    -- One failure per refused code; forgotten after a day of quiet past
    -- the last lock (rate_limit::record_failure).
    lock_len := CASE WHEN u.failures >= maxf THEN pam_otp.lock_for(u.failures, maxf, ival) ELSE 0 END;
    UPDATE pam_otp.users x
       SET failures = CASE WHEN greatest(p_now - u.last_failure, 0) >= lock_len + 86400 THEN 1
                           ELSE u.failures + 1 END,
           last_failure = p_now
     WHERE x.name = p_user;
    PERFORM pam_otp.prune_temp_code(p_user, p_now);
    RETURN NEXT;
END
$$;

-- secret_file::SecretFile::prune_temp_code: drops the user's temporary
-- code once it accepts nothing at `p_now` (used up or expired), unless
-- it is all the user has (a record holds a token or a temporary code; a
-- spent one alone is "no token" to login_info, and enroll() replaces it).
CREATE OR REPLACE FUNCTION pam_otp.prune_temp_code(p_user text, p_now bigint)
RETURNS void
LANGUAGE sql VOLATILE
SET search_path = pg_catalog, pam_otp, pg_temp
AS $$
    DELETE FROM pam_otp.temp_codes c
     WHERE c.username = p_user AND NOT (p_now < c.expires AND c.uses_left > 0)
       AND EXISTS (SELECT 1 FROM pam_otp.tokens t WHERE t.username = p_user)
$$;

-- The drift a token is left with when it does not move: its clamped value
-- (learn_drift stores the drift the window was centred on).
CREATE OR REPLACE FUNCTION pam_otp.drift_of(p_drift bigint)
RETURNS bigint
LANGUAGE sql IMMUTABLE
SET search_path = pg_catalog, pam_otp, pg_temp
AS $$ SELECT least(greatest(p_drift, -10), 10) $$;

-- Version 2's record_grace (no service): replaced below.
DROP FUNCTION IF EXISTS pam_otp.record_grace(text, text, bigint, bigint);

-- grace::record: replaces the entry of the address and service, drops
-- expired ones (by the database's period: no host may keep one longer)
-- and those of no service, keeps the newest 16. Each entry records the
-- service and the host role that wrote it (`by`: session_user, the role
-- that connected). Nothing is kept when the host asks for no grace, the
-- database allows none, or the service could not be kept (a secret file
-- keeps 1 to 64 characters, none a control character).
CREATE OR REPLACE FUNCTION pam_otp.record_grace(p_user text, p_rhost text, p_service text, p_period bigint, p_now bigint)
RETURNS void
LANGUAGE plpgsql VOLATILE
SET search_path = pg_catalog, pam_otp, pg_temp
AS $$
DECLARE
    keep bigint := (SELECT s.grace_period FROM pam_otp.settings s WHERE s.one);
BEGIN
    IF p_rhost IS NULL OR p_service IS NULL OR p_service = '' OR octet_length(p_service) > 64
       OR p_service ~ '[[:cntrl:]]' OR least(coalesce(p_period, 0), keep) <= 0 THEN
        RETURN;
    END IF;
    UPDATE pam_otp.users x SET grace = coalesce((
        SELECT jsonb_agg(jsonb_build_object('from', e.f, 'at', e.a, 'service', e.s, 'by', e.b)
                         ORDER BY e.a DESC, e.o)
          FROM (
            SELECT * FROM (
                SELECT p_rhost AS f, p_now AS a, p_service AS s, session_user::text AS b, 0::bigint AS o
                UNION ALL
                SELECT g.value->>'from', (g.value->>'at')::bigint, g.value->>'service',
                       g.value->>'by', g.ord
                  FROM jsonb_array_elements(x.grace) WITH ORDINALITY AS g(value, ord)
                 WHERE g.value->>'service' IS NOT NULL
                   AND NOT (g.value->>'from' = p_rhost AND g.value->>'service' = p_service)
                   AND (g.value->>'at')::bigint <= p_now
                   AND p_now - (g.value->>'at')::bigint < keep
            ) all_entries
            ORDER BY a DESC, o
            LIMIT 16
          ) e), '[]'::jsonb)
     WHERE x.name = p_user;
END
$$;

-- What a host calls (version 3): verify_at at the database's time, and
-- its audit row in the same transaction. `p_rhost` is the address a grace
-- entry is kept for (NULL: none); `p_service` and `p_remote` are
-- PAM_SERVICE and PAM_RHOST as the module read them when the login began
-- (NULL when unset).
CREATE OR REPLACE FUNCTION pam_otp.verify_code(
    p_user text, p_code text, p_rhost text, p_grace_period bigint,
    p_totp_skew integer, p_hotp_window integer, p_max_failures integer, p_interval bigint,
    p_service text, p_remote text)
RETURNS TABLE (verdict text, token text, detail bigint, why text)
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pam_otp, pg_temp
AS $$
DECLARE
    t bigint := extract(epoch FROM clock_timestamp())::bigint;
    r record;
BEGIN
    SELECT * INTO r FROM pam_otp.verify_at(p_user, p_code, p_rhost, p_grace_period, p_totp_skew,
        p_hotp_window, p_max_failures, p_interval, p_service, t) v;
    INSERT INTO pam_otp.audit (at, kind, db_role, client_addr, username, token, service, rhost, result)
    VALUES (t, 'verify', session_user, inet_client_addr(), pam_otp.audit_text(p_user), r.token,
            pam_otp.audit_text(p_service), pam_otp.audit_text(p_remote), r.verdict);
    verdict := r.verdict;
    token := r.token;
    detail := r.detail;
    why := r.why;
    RETURN NEXT;
END
$$;

-- Version 2's verify(), what a version 2 module calls: kept for one
-- version so that hosts can be upgraded after the database. It knows no
-- 'inactive': such a code is 'wrong' to it (refused and counted, as
-- verify_code does; the audit row says 'inactive'). Nor the temporary
-- code: an accepted one is 'scratch' to it (the uses left as the codes
-- left: it logs "emergency code accepted"), a spent one 'wrong'.
CREATE OR REPLACE FUNCTION pam_otp.verify(
    p_user text, p_code text, p_rhost text, p_grace_period bigint,
    p_totp_skew integer, p_hotp_window integer, p_max_failures integer, p_interval bigint,
    p_service text, p_remote text)
RETURNS TABLE (verdict text, token text, detail bigint)
LANGUAGE sql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pam_otp, pg_temp
AS $$
    SELECT CASE v.verdict WHEN 'inactive' THEN 'wrong' WHEN 'temp_code_gone' THEN 'wrong'
                          WHEN 'temp_code' THEN 'scratch' ELSE v.verdict END,
           CASE WHEN v.verdict IN ('inactive', 'temp_code_gone') THEN NULL ELSE v.token END,
           CASE WHEN v.verdict IN ('inactive', 'temp_code_gone') THEN NULL ELSE v.detail END
      FROM pam_otp.verify_code(p_user, p_code, p_rhost, p_grace_period, p_totp_skew,
                               p_hotp_window, p_max_failures, p_interval, p_service, p_remote) v
$$;

-- A code typed for a name that has no token (verify.rs's
-- verify_no_token): nothing is right; the rate limit is the settings'
-- ceilings over the host's, as in verify_at, and the failure is counted
-- in pam_otp.unenrolled when the host says the name is an account
-- (`p_account`). A name that is no account keeps nothing (a guesser
-- would fill the table with names of their choosing), but the work is
-- the same: the codes a wrong code costs an enrolled user's TOTP app are
-- computed too. One row: 'wrong', 'malformed' or 'locked' (and the
-- seconds left).
CREATE OR REPLACE FUNCTION pam_otp.verify_no_token_at(
    p_user text, p_code text, p_totp_skew integer, p_max_failures integer, p_interval bigint,
    p_account boolean, p_now bigint)
RETURNS TABLE (verdict text, detail bigint)
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pam_otp, pg_temp
AS $$
DECLARE
    s pam_otp.settings%ROWTYPE;
    maxf integer;
    ival bigint;
    skew integer;
    f integer := 0;
    lf bigint := 0;
    until bigint;
    code text;
    d integer;
    lock_len bigint;
BEGIN
    SELECT * INTO s FROM pam_otp.settings WHERE one;
    skew := least(greatest(coalesce(p_totp_skew, 0), 0), s.totp_skew);
    maxf := CASE WHEN coalesce(p_max_failures, 0) <= 0 THEN s.max_failures
                 ELSE least(p_max_failures, s.max_failures) END;
    ival := greatest(coalesce(p_interval, 0), s.lock_interval);
    IF coalesce(p_account, false) THEN
        INSERT INTO pam_otp.unenrolled (name) VALUES (p_user) ON CONFLICT (name) DO NOTHING;
        SELECT x.failures, x.last_failure INTO f, lf
          FROM pam_otp.unenrolled x WHERE x.name = p_user FOR UPDATE;
    END IF;
    IF f >= maxf THEN
        until := lf + pam_otp.lock_for(f, maxf, ival);
        IF p_now < until THEN
            verdict := 'locked';
            detail := until - p_now;
            RETURN NEXT;
            RETURN;
        END IF;
    END IF;
    code := pam_otp.normalize_code(p_code);
    IF code IS NOT NULL THEN
        FOR d IN -skew..skew LOOP
            PERFORM pam_otp.otp_code('\x0000000000000000000000000000000000000000'::bytea,
                                     greatest(p_now / 30 + d, 0), 6, 'SHA1');
        END LOOP;
    END IF;
    verdict := CASE WHEN code IS NOT NULL AND length(code) IN (6, 8) THEN 'wrong'
                    ELSE 'malformed' END;
    IF coalesce(p_account, false) THEN
        lock_len := CASE WHEN f >= maxf THEN pam_otp.lock_for(f, maxf, ival) ELSE 0 END;
        UPDATE pam_otp.unenrolled x
           SET failures = CASE WHEN greatest(p_now - lf, 0) >= lock_len + 86400 THEN 1
                               ELSE f + 1 END,
               last_failure = p_now
         WHERE x.name = p_user;
    END IF;
    RETURN NEXT;
END
$$;

-- What a host calls for a name without a token (version 3): the login's
-- second query, as verify_code is an enrolled user's, with its audit row
-- (result 'wrong', 'malformed' or 'locked'; no token).
CREATE OR REPLACE FUNCTION pam_otp.verify_no_token(
    p_user text, p_code text, p_totp_skew integer, p_max_failures integer, p_interval bigint,
    p_account boolean, p_service text, p_remote text)
RETURNS TABLE (verdict text, detail bigint)
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pam_otp, pg_temp
AS $$
DECLARE
    t bigint := extract(epoch FROM clock_timestamp())::bigint;
    r record;
BEGIN
    SELECT * INTO r FROM pam_otp.verify_no_token_at(p_user, p_code, p_totp_skew, p_max_failures,
        p_interval, p_account, t) v;
    INSERT INTO pam_otp.audit (at, kind, db_role, client_addr, username, service, rhost, result)
    VALUES (t, 'verify', session_user, inet_client_addr(), pam_otp.audit_text(p_user),
            pam_otp.audit_text(p_service), pam_otp.audit_text(p_remote), r.verdict);
    verdict := r.verdict;
    detail := r.detail;
    RETURN NEXT;
END
$$;

-- Version 1's verify(), what a version 1 module calls: kept for one
-- version so that hosts can be upgraded after the database. Its audit row
-- has no service, and a remote address only when the host keeps grace
-- entries (version 1 sent the address for that alone).
CREATE OR REPLACE FUNCTION pam_otp.verify(
    p_user text, p_code text, p_rhost text, p_grace_period bigint,
    p_totp_skew integer, p_hotp_window integer, p_max_failures integer, p_interval bigint)
RETURNS TABLE (verdict text, token text, detail bigint)
LANGUAGE sql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pam_otp, pg_temp
AS $$
    SELECT * FROM pam_otp.verify(p_user, p_code, p_rhost, p_grace_period, p_totp_skew,
        p_hotp_window, p_max_failures, p_interval, NULL::text, p_rhost)
$$;

-- ---- records as JSON (enroll, admin_read, admin_write) -------------------

-- Replaces the user's tokens and state with `p_record` (the row is locked
-- by the caller). Checked as a secret file is: a bad record raises, and
-- the transaction leaves everything as it was. A record holds 1 to 16
-- tokens, or none and a temporary code (`temp_code`: salt and hash in
-- hex, expires, uses_left, created, created_by; version 3).
CREATE OR REPLACE FUNCTION pam_otp.write_record(p_user text, p_record jsonb, p_pending boolean)
RETURNS void
LANGUAGE plpgsql VOLATILE
SET search_path = pg_catalog, pam_otp, pg_temp
AS $$
DECLARE
    n integer := jsonb_array_length(coalesce(p_record->'tokens', '[]'::jsonb));
    tc jsonb := nullif(p_record->'temp_code', 'null'::jsonb);
BEGIN
    IF (n < 1 AND tc IS NULL) OR n > 16 THEN
        RAISE EXCEPTION 'a record holds 1 to 16 tokens, not %', n USING ERRCODE = '22023';
    END IF;
    IF p_user IS NULL OR p_user = '' OR p_user ~ '[/[:cntrl:]]' OR p_user IN ('.', '..') THEN
        RAISE EXCEPTION 'not a plausible user name' USING ERRCODE = '22023';
    END IF;
    INSERT INTO pam_otp.users AS x (name) VALUES (p_user) ON CONFLICT (name) DO NOTHING;
    UPDATE pam_otp.users x SET
        pending = p_pending,
        scratch_codes = coalesce(ARRAY(SELECT jsonb_array_elements_text(coalesce(p_record->'scratch_codes', '[]'::jsonb))), '{}'),
        failures = coalesce((p_record->>'failures')::integer, 0),
        last_failure = coalesce((p_record->>'last_failure')::bigint, 0),
        grace = coalesce(p_record->'grace', '[]'::jsonb),
        uid = (p_record->>'uid')::bigint
     WHERE x.name = p_user;
    DELETE FROM pam_otp.tokens x WHERE x.username = p_user;
    INSERT INTO pam_otp.tokens (username, position, id, type, secret, algorithm, digits, period,
                                counter, serial, created, last_step, drift, drift_moved, last_used,
                                disabled, not_before, expires)
    SELECT p_user, e.ord, e.v->>'id', e.v->>'type', decode(e.v->>'secret', 'hex'),
           coalesce(e.v->>'algorithm', 'SHA1'), coalesce((e.v->>'digits')::integer, 6),
           coalesce((e.v->>'period')::bigint, 30), coalesce((e.v->>'counter')::bigint, 0),
           e.v->>'serial', (e.v->>'created')::bigint, (e.v->>'last_step')::bigint,
           coalesce((e.v->>'drift')::bigint, 0), coalesce((e.v->>'drift_moved')::bigint, 0),
           (e.v->>'last_used')::bigint, coalesce((e.v->>'disabled')::boolean, false),
           (e.v->>'not_before')::bigint, (e.v->>'expires')::bigint
      FROM jsonb_array_elements(p_record->'tokens') WITH ORDINALITY AS e(v, ord);
    IF EXISTS (SELECT 1 FROM unnest((SELECT scratch_codes FROM pam_otp.users WHERE name = p_user)) c
                WHERE c !~ '^[0-9]{8}$') THEN
        RAISE EXCEPTION 'emergency codes are 8 digits' USING ERRCODE = '22023';
    END IF;
    DELETE FROM pam_otp.temp_codes x WHERE x.username = p_user;
    IF tc IS NOT NULL THEN
        IF coalesce(tc->>'salt', '') !~ '^[0-9a-fA-F]{32}$' OR coalesce(tc->>'hash', '') !~ '^[0-9a-fA-F]{64}$' THEN
            RAISE EXCEPTION 'temp_code: salt and hash are 16 and 32 bytes in hex' USING ERRCODE = '22023';
        END IF;
        -- The table's checks refuse the rest (ranges, created_by).
        INSERT INTO pam_otp.temp_codes (username, salt, hash, expires, uses_left, created, created_by)
        VALUES (p_user, decode(tc->>'salt', 'hex'), decode(tc->>'hash', 'hex'),
                (tc->>'expires')::bigint, (tc->>'uses_left')::integer, (tc->>'created')::bigint,
                tc->>'created_by');
    END IF;
END
$$;

CREATE OR REPLACE FUNCTION pam_otp.read_record(p_user text)
RETURNS jsonb
LANGUAGE sql STABLE
SET search_path = pg_catalog, pam_otp, pg_temp
AS $$
    SELECT jsonb_build_object(
        'version', 2,
        'pending', u.pending,
        'scratch_codes', to_jsonb(u.scratch_codes),
        'failures', u.failures,
        'last_failure', u.last_failure,
        'grace', u.grace,
        'uid', u.uid,
        'temp_code', (SELECT jsonb_build_object(
                        'salt', encode(c.salt, 'hex'), 'hash', encode(c.hash, 'hex'),
                        'expires', c.expires, 'uses_left', c.uses_left, 'created', c.created,
                        'created_by', c.created_by)
                        FROM pam_otp.temp_codes c WHERE c.username = u.name),
        'tokens', coalesce((SELECT jsonb_agg(jsonb_build_object(
                        'id', t.id, 'type', t.type, 'secret', encode(t.secret, 'hex'),
                        'algorithm', t.algorithm, 'digits', t.digits, 'period', t.period,
                        'counter', t.counter, 'serial', t.serial, 'created', t.created,
                        'last_step', t.last_step, 'drift', t.drift,
                        'drift_moved', t.drift_moved, 'last_used', t.last_used,
                        'disabled', t.disabled, 'not_before', t.not_before,
                        'expires', t.expires)
                        ORDER BY t.position)
                     FROM pam_otp.tokens t WHERE t.username = u.name), '[]'::jsonb))
      FROM pam_otp.users u
     WHERE u.name = p_user
       AND (EXISTS (SELECT 1 FROM pam_otp.tokens t WHERE t.username = u.name)
            OR EXISTS (SELECT 1 FROM pam_otp.temp_codes c WHERE c.username = u.name))
$$;

-- A host's enrollment (missing = "enroll", or after otp-enroll reset): only
-- for a user who has no token; never replaces one. A live temporary code
-- is a token here too (as in login_info, by the database's clock): a
-- password thief cannot enroll beside the code an admin gave; a spent
-- one alone is replaced (store/file.rs's create does the same).
CREATE OR REPLACE FUNCTION pam_otp.enroll(p_user text, p_record jsonb)
RETURNS text
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pam_otp, pg_temp
AS $$
BEGIN
    INSERT INTO pam_otp.users (name) VALUES (p_user) ON CONFLICT (name) DO NOTHING;
    PERFORM 1 FROM pam_otp.users WHERE name = p_user FOR UPDATE;
    IF EXISTS (SELECT 1 FROM pam_otp.tokens WHERE username = p_user)
       OR pam_otp.temp_code_live(p_user, extract(epoch FROM clock_timestamp())::bigint) THEN
        RETURN 'exists';
    END IF;
    PERFORM pam_otp.write_record(p_user, p_record, false);
    INSERT INTO pam_otp.audit (at, kind, db_role, client_addr, username, token, result)
    VALUES (extract(epoch FROM clock_timestamp())::bigint, 'enroll', session_user,
            inet_client_addr(), p_user, pam_otp.audit_text(p_record->'tokens'->0->>'id'), 'created');
    RETURN 'created';
END
$$;

-- ---- what an admin calls (otp-enroll as root) ---------------------------

CREATE OR REPLACE FUNCTION pam_otp.admin_read(p_user text, p_lock boolean)
RETURNS jsonb
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pam_otp, pg_temp
AS $$
BEGIN
    IF p_lock THEN
        PERFORM 1 FROM pam_otp.users WHERE name = p_user FOR UPDATE;
    END IF;
    RETURN pam_otp.read_record(p_user);
END
$$;

CREATE OR REPLACE FUNCTION pam_otp.admin_write(p_user text, p_record jsonb)
RETURNS void
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pam_otp, pg_temp
AS $$
BEGIN
    INSERT INTO pam_otp.users (name) VALUES (p_user) ON CONFLICT (name) DO NOTHING;
    PERFORM 1 FROM pam_otp.users WHERE name = p_user FOR UPDATE;
    PERFORM pam_otp.write_record(p_user, p_record, coalesce((p_record->>'pending')::boolean, false));
END
$$;

-- Removes the user's tokens, emergency codes, temporary code and state.
-- A pending re-enrollment stays (reset marks first, then removes).
CREATE OR REPLACE FUNCTION pam_otp.admin_remove(p_user text)
RETURNS boolean
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pam_otp, pg_temp
AS $$
DECLARE
    had boolean;
BEGIN
    PERFORM 1 FROM pam_otp.users WHERE name = p_user FOR UPDATE;
    had := EXISTS (SELECT 1 FROM pam_otp.tokens WHERE username = p_user);
    DELETE FROM pam_otp.tokens WHERE username = p_user;
    DELETE FROM pam_otp.temp_codes WHERE username = p_user;
    DELETE FROM pam_otp.users WHERE name = p_user AND NOT pending;
    UPDATE pam_otp.users SET scratch_codes = '{}', failures = 0, last_failure = 0, grace = '[]', uid = NULL
     WHERE name = p_user;
    RETURN had;
END
$$;

-- Version 3: the same, and a pending mark left (otp-enroll reset marks
-- first, then removes) is the account's of uid `p_uid`, as
-- admin_set_pending(text, boolean, bigint) records it for a user without
-- tokens.
CREATE OR REPLACE FUNCTION pam_otp.admin_remove(p_user text, p_uid bigint)
RETURNS boolean
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pam_otp, pg_temp
AS $$
DECLARE
    had boolean := pam_otp.admin_remove(p_user);
BEGIN
    IF p_uid IS NOT NULL THEN
        UPDATE pam_otp.users u SET uid = p_uid WHERE u.name = p_user AND u.pending;
    END IF;
    RETURN had;
END
$$;

CREATE OR REPLACE FUNCTION pam_otp.admin_pending(p_user text)
RETURNS boolean
LANGUAGE sql STABLE SECURITY DEFINER
SET search_path = pg_catalog, pam_otp, pg_temp
AS $$
    SELECT coalesce((SELECT pending FROM pam_otp.users WHERE name = p_user), false)
$$;

CREATE OR REPLACE FUNCTION pam_otp.admin_set_pending(p_user text, p_pending boolean)
RETURNS void
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pam_otp, pg_temp
AS $$
BEGIN
    IF p_pending THEN
        INSERT INTO pam_otp.users (name, pending) VALUES (p_user, true)
            ON CONFLICT (name) DO UPDATE SET pending = true;
    ELSE
        UPDATE pam_otp.users SET pending = false WHERE name = p_user;
        DELETE FROM pam_otp.users u WHERE u.name = p_user
           AND NOT EXISTS (SELECT 1 FROM pam_otp.tokens t WHERE t.username = u.name)
           AND NOT EXISTS (SELECT 1 FROM pam_otp.temp_codes c WHERE c.username = u.name);
    END IF;
END
$$;

-- Version 3: the mark of the account of uid `p_uid` (otp-enroll reset
-- and require): kept in users.uid while the user has no token (a
-- record's own uid stays), so that a host refuses it to another account
-- of the name (a deleted one's name given again).
CREATE OR REPLACE FUNCTION pam_otp.admin_set_pending(p_user text, p_pending boolean, p_uid bigint)
RETURNS void
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pam_otp, pg_temp
AS $$
BEGIN
    PERFORM pam_otp.admin_set_pending(p_user, p_pending);
    IF p_pending AND p_uid IS NOT NULL THEN
        UPDATE pam_otp.users u SET uid = p_uid
         WHERE u.name = p_user
           AND NOT EXISTS (SELECT 1 FROM pam_otp.tokens t WHERE t.username = u.name);
    END IF;
END
$$;

-- Unix seconds as an admin reads a time, in UTC (RFC 3339, as
-- otp-enroll prints them), for messages; whatever the session's TimeZone.
CREATE OR REPLACE FUNCTION pam_otp.utc_text(p bigint)
RETURNS text
LANGUAGE sql STABLE
SET search_path = pg_catalog, pam_otp, pg_temp
AS $$
    SELECT to_char(to_timestamp(p) AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS"Z"')
$$;

-- ---- exemptions (version 3) ----------------------------------------------

-- Grants `p_user` (the account of uid `p_uid`) an exemption at `p_now`
-- (this database's clock: see admin_set_exemption), replacing one there:
-- until `p_until`, or when NULL the longest allowed; never past
-- `p_now` + settings.max_exemption days, nor past `p_now` + `p_max`
-- seconds when given (the admin's own config may only shorten it). `by`
-- is the role that connected and what otp-enroll says of its caller.
-- The exemption as kept: (until, granted). Granted to nobody.
CREATE OR REPLACE FUNCTION pam_otp.admin_set_exemption_at(
    p_user text, p_uid bigint, p_until bigint, p_max bigint, p_by text, p_reason text,
    p_now bigint)
RETURNS TABLE (until bigint, granted bigint)
LANGUAGE plpgsql VOLATILE
SET search_path = pg_catalog, pam_otp, pg_temp
AS $$
DECLARE
    days integer := (SELECT s.max_exemption FROM pam_otp.settings s WHERE s.one);
    longest bigint;
    who text;
BEGIN
    IF p_user IS NULL OR p_user = '' OR p_user ~ '[/[:cntrl:]]' OR p_user IN ('.', '..') THEN
        RAISE EXCEPTION 'not a plausible user name' USING ERRCODE = '22023';
    END IF;
    IF p_uid IS NULL OR p_uid NOT BETWEEN 0 AND 4294967295 THEN
        RAISE EXCEPTION 'an exemption is granted to an account: its uid is needed' USING ERRCODE = '22023';
    END IF;
    IF coalesce(p_reason, '') ~ '[[:cntrl:]]' OR char_length(coalesce(p_reason, '')) > 200 THEN
        RAISE EXCEPTION 'the reason is at most 200 characters, none a control character' USING ERRCODE = '22023';
    END IF;
    IF days <= 0 THEN
        RAISE EXCEPTION 'exemptions are off in this database (settings.max_exemption = 0)' USING ERRCODE = '22023';
    END IF;
    longest := p_now + days::bigint * 86400;
    IF p_max IS NOT NULL THEN
        longest := least(longest, p_now + greatest(p_max, 0));
    END IF;
    IF p_until IS NOT NULL AND p_until <= p_now THEN
        RAISE EXCEPTION 'the end of the exemption (%) is not after the database''s now (%)',
            pam_otp.utc_text(p_until), pam_otp.utc_text(p_now) USING ERRCODE = '22023';
    END IF;
    IF p_until IS NOT NULL AND p_until > longest THEN
        RAISE EXCEPTION 'the end of the exemption (%) is more than max_exemption (% days in the database) after it is granted (%): the longest is %',
            pam_otp.utc_text(p_until), days, pam_otp.utc_text(p_now), pam_otp.utc_text(longest)
            USING ERRCODE = '22023';
    END IF;
    IF longest <= p_now THEN
        RAISE EXCEPTION 'exemptions are off (max_exemption = 0)' USING ERRCODE = '22023';
    END IF;
    who := left('db_role="' || session_user || '" ' || coalesce(p_by, ''), 200);
    INSERT INTO pam_otp.exemptions AS e (name, uid, until, granted, by, reason)
    VALUES (p_user, p_uid, coalesce(p_until, longest), p_now, regexp_replace(who, '[[:cntrl:]]', '', 'g'),
            coalesce(p_reason, ''))
    ON CONFLICT (name) DO UPDATE SET uid = EXCLUDED.uid, until = EXCLUDED.until,
        granted = EXCLUDED.granted, by = EXCLUDED.by, reason = EXCLUDED.reason;
    until := coalesce(p_until, longest);
    granted := p_now;
    RETURN NEXT;
END
$$;

CREATE OR REPLACE FUNCTION pam_otp.admin_set_exemption(
    p_user text, p_uid bigint, p_until bigint, p_max bigint, p_by text, p_reason text)
RETURNS TABLE (until bigint, granted bigint)
LANGUAGE sql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pam_otp, pg_temp
AS $$
    -- The second it is in (not the nearest one, as a cast would round):
    -- never ahead of a client on the same clock that truncates.
    SELECT * FROM pam_otp.admin_set_exemption_at(p_user, p_uid, p_until, p_max, p_by, p_reason,
                                                 floor(extract(epoch FROM clock_timestamp()))::bigint)
$$;

-- Withdraws `p_user`'s exemption (otp-enroll unexempt, require, remove
-- --orphans); whether there was one.
CREATE OR REPLACE FUNCTION pam_otp.admin_unexempt(p_user text)
RETURNS boolean
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pam_otp, pg_temp
AS $$
BEGIN
    DELETE FROM pam_otp.exemptions e WHERE e.name = p_user;
    RETURN FOUND;
END
$$;

-- The exemptions as kept (otp-enroll status, list, report): of `p_user`,
-- or everyone's when NULL, whether they hold now or not; `now` is this
-- database's clock and `max_days` its settings.max_exemption.
CREATE OR REPLACE FUNCTION pam_otp.admin_exemptions(p_user text)
RETURNS TABLE (name text, uid bigint, until bigint, granted bigint, by text, reason text,
               now bigint, max_days integer)
LANGUAGE sql STABLE SECURITY DEFINER
SET search_path = pg_catalog, pam_otp, pg_temp
AS $$
    SELECT e.name, e.uid, e.until, e.granted, e.by, e.reason,
           extract(epoch FROM clock_timestamp())::bigint, s.max_exemption
      FROM pam_otp.exemptions e, pam_otp.settings s
     WHERE s.one AND (p_user IS NULL OR e.name = p_user)
     ORDER BY e.name
$$;

-- Forgets the failure tally of an account without a token (otp-enroll
-- unlock); whether there was one.
CREATE OR REPLACE FUNCTION pam_otp.admin_clear_unenrolled(p_user text)
RETURNS boolean
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pam_otp, pg_temp
AS $$
BEGIN
    DELETE FROM pam_otp.unenrolled x WHERE x.name = p_user;
    RETURN FOUND;
END
$$;

-- What each name holds and the uid it records (otp-enroll remove
-- --orphans compares it with the name service): 'record' (tokens, or a
-- temporary code alone), 'pending_mark' (a mark without either),
-- 'exemption', 'unenrolled_tally' (which records no uid). Never a secret.
CREATE OR REPLACE FUNCTION pam_otp.admin_owners()
RETURNS TABLE (name text, kind text, uid bigint)
LANGUAGE sql STABLE SECURITY DEFINER
SET search_path = pg_catalog, pam_otp, pg_temp
AS $$
    SELECT * FROM (
        SELECT u.name, CASE WHEN r.held THEN 'record' ELSE 'pending_mark' END AS kind, u.uid
          FROM pam_otp.users u,
               LATERAL (SELECT EXISTS (SELECT 1 FROM pam_otp.tokens t WHERE t.username = u.name)
                            OR EXISTS (SELECT 1 FROM pam_otp.temp_codes c WHERE c.username = u.name)
                            AS held) r
         WHERE u.pending OR r.held
        UNION ALL
        SELECT e.name, 'exemption', e.uid FROM pam_otp.exemptions e
        UNION ALL
        SELECT x.name, 'unenrolled_tally', NULL::bigint FROM pam_otp.unenrolled x
    ) o ORDER BY o.name, o.kind
$$;

-- Removes what `p_user` holds of `p_kind` (as admin_owners names it)
-- when it still records `p_uid` (NULL: no uid), so that a record made
-- for the new account since it was listed is left alone: a record goes
-- whole (its tokens, state and mark), a mark, an exemption, a tally.
-- The ids of the tokens removed ('{}' for the rest), or NULL when
-- nothing matched.
CREATE OR REPLACE FUNCTION pam_otp.admin_remove_orphan(p_user text, p_kind text, p_uid bigint)
RETURNS text[]
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pam_otp, pg_temp
AS $$
DECLARE
    u pam_otp.users%ROWTYPE;
    ids text[];
BEGIN
    IF p_kind = 'exemption' THEN
        DELETE FROM pam_otp.exemptions e WHERE e.name = p_user AND e.uid IS NOT DISTINCT FROM p_uid;
        RETURN CASE WHEN FOUND THEN '{}'::text[] END;
    ELSIF p_kind = 'unenrolled_tally' THEN
        DELETE FROM pam_otp.unenrolled x WHERE x.name = p_user;
        RETURN CASE WHEN FOUND THEN '{}'::text[] END;
    ELSIF p_kind NOT IN ('record', 'pending_mark') THEN
        RAISE EXCEPTION 'not a kind of orphan: %', left(p_kind, 32) USING ERRCODE = '22023';
    END IF;
    SELECT * INTO u FROM pam_otp.users x WHERE x.name = p_user FOR UPDATE;
    IF NOT FOUND OR u.uid IS DISTINCT FROM p_uid THEN
        RETURN NULL;
    END IF;
    ids := ARRAY(SELECT t.id FROM pam_otp.tokens t WHERE t.username = p_user ORDER BY t.position);
    IF (p_kind = 'record') <> (cardinality(ids) > 0
                               OR EXISTS (SELECT 1 FROM pam_otp.temp_codes c WHERE c.username = p_user)) THEN
        RETURN NULL;
    END IF;
    DELETE FROM pam_otp.users x WHERE x.name = p_user;
    RETURN ids;
END
$$;

CREATE OR REPLACE FUNCTION pam_otp.admin_users()
RETURNS SETOF text
LANGUAGE sql STABLE SECURITY DEFINER
SET search_path = pg_catalog, pam_otp, pg_temp
AS $$
    SELECT name FROM pam_otp.users ORDER BY name
$$;

CREATE OR REPLACE FUNCTION pam_otp.admin_inventory_read(p_lock boolean)
RETURNS text
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pam_otp, pg_temp
AS $$
DECLARE
    d text;
BEGIN
    IF p_lock THEN
        -- The row to lock, made once: two admins never assign one token twice.
        INSERT INTO pam_otp.inventory (one, doc) VALUES (true, 'version = 1' || chr(10))
            ON CONFLICT (one) DO NOTHING;
        SELECT doc INTO d FROM pam_otp.inventory WHERE one FOR UPDATE;
    ELSE
        SELECT doc INTO d FROM pam_otp.inventory WHERE one;
    END IF;
    RETURN d;
END
$$;

CREATE OR REPLACE FUNCTION pam_otp.admin_inventory_write(p_doc text)
RETURNS void
LANGUAGE sql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pam_otp, pg_temp
AS $$
    INSERT INTO pam_otp.inventory (one, doc) VALUES (true, p_doc)
        ON CONFLICT (one) DO UPDATE SET doc = EXCLUDED.doc
$$;

-- Every user the database knows (otp-enroll report, version 2), in one
-- query: one row per user, with the pending mark, the tokens (never a
-- secret: id, type, serial, when made, when last used; a TOTP token
-- without last_used has its last step's start, as a version 1 file has;
-- version 3: disabled, not_before, expires),
-- the number of emergency codes (never one of them), the rate limit's
-- count and, judged as verify_at judges it (the host's policy under the
-- database's ceilings, by the database's clock), until when the user is
-- locked (NULL: not locked). `now` is that clock. Version 3: `uid`, the
-- account the record was made for (NULL: not kept), so that the report
-- names a record a recycled name would find; `temp_code`, the temporary
-- code's expires, uses_left, created and created_by (never its salt or
-- hash; NULL: none).
DO $$
BEGIN
    -- Version 2's (no uid column), or one without temp_code: its return
    -- type changes.
    IF EXISTS (SELECT 1 FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
                WHERE n.nspname = 'pam_otp' AND p.proname = 'admin_census'
                  AND NOT ('uid' = ANY (p.proargnames) AND 'temp_code' = ANY (p.proargnames))) THEN
        DROP FUNCTION pam_otp.admin_census(integer, bigint);
    END IF;
END
$$;
CREATE OR REPLACE FUNCTION pam_otp.admin_census(p_max_failures integer, p_interval bigint)
RETURNS TABLE (name text, pending boolean, tokens jsonb, emergency_codes integer,
               failures integer, last_failure bigint, locked_until bigint, now bigint,
               uid bigint, temp_code jsonb)
LANGUAGE plpgsql STABLE SECURITY DEFINER
-- No JIT: compiling this plan took some 300 ms on 5 000 users (bench/report-cost),
-- ten times what running it takes; the planner's estimate grows with the
-- users and would switch it on again.
SET search_path = pg_catalog, pam_otp, pg_temp
SET jit = off
AS $$
DECLARE
    s pam_otp.settings%ROWTYPE;
    t bigint := extract(epoch FROM clock_timestamp())::bigint;
    maxf integer;
    ival bigint;
BEGIN
    SELECT * INTO s FROM pam_otp.settings WHERE one;
    maxf := CASE WHEN coalesce(p_max_failures, 0) <= 0 THEN s.max_failures
                 ELSE least(p_max_failures, s.max_failures) END;
    ival := greatest(coalesce(p_interval, 0), s.lock_interval);
    RETURN QUERY
    WITH k AS (
        SELECT x.username,
               jsonb_agg(jsonb_build_object(
                   'id', x.id, 'type', x.type, 'serial', x.serial, 'created', x.created,
                   'last_used', coalesce(x.last_used,
                       CASE WHEN x.type = 'totp' AND x.last_step IS NOT NULL
                            THEN least(x.last_step::numeric * x.period, 9223372036854775807)::bigint END),
                   'disabled', x.disabled, 'not_before', x.not_before, 'expires', x.expires)
                   ORDER BY x.position) AS tokens
          FROM pam_otp.tokens x GROUP BY x.username
    )
    SELECT u.name, u.pending, coalesce(k.tokens, '[]'::jsonb),
           coalesce(array_length(u.scratch_codes, 1), 0), u.failures, u.last_failure,
           CASE WHEN u.failures >= maxf AND t < l.until
                THEN least(l.until, 9223372036854775807)::bigint END,
           t, u.uid,
           (SELECT jsonb_build_object('expires', c.expires, 'uses_left', c.uses_left,
                                      'created', c.created, 'created_by', c.created_by)
              FROM pam_otp.temp_codes c WHERE c.username = u.name)
      FROM pam_otp.users u LEFT JOIN k ON k.username = u.name
           CROSS JOIN LATERAL (SELECT u.last_failure::numeric
                                      + pam_otp.lock_for(u.failures, maxf, ival) AS until) l
     ORDER BY u.name;
END
$$;

-- One change otp-enroll made (version 2): its row, stamped here, with
-- what otp-enroll says of itself as claims; then the purge.
CREATE OR REPLACE FUNCTION pam_otp.admin_record_change(
    p_command text, p_user text, p_token text, p_serial text, p_detail text,
    p_claimed_uid bigint, p_claimed_login_uid text, p_claimed_sudo_user text, p_claimed_host text)
RETURNS void
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pam_otp, pg_temp
AS $$
DECLARE
    t bigint := extract(epoch FROM clock_timestamp())::bigint;
BEGIN
    IF p_command IS NULL OR p_command !~ '^[a-z][a-z0-9 -]{0,63}$' THEN
        RAISE EXCEPTION 'not an otp-enroll command: %', left(p_command, 64) USING ERRCODE = '22023';
    END IF;
    INSERT INTO pam_otp.audit (at, kind, db_role, client_addr, command, username, token, serial,
                               detail, claimed_uid, claimed_login_uid, claimed_sudo_user, claimed_host)
    VALUES (t, 'change', session_user, inet_client_addr(), p_command, pam_otp.audit_text(p_user),
            pam_otp.audit_text(p_token), pam_otp.audit_text(p_serial), pam_otp.audit_text(p_detail),
            p_claimed_uid, pam_otp.audit_text(p_claimed_login_uid),
            pam_otp.audit_text(p_claimed_sudo_user), pam_otp.audit_text(p_claimed_host));
    PERFORM pam_otp.audit_purge_at(t);
END
$$;

-- The audit rows (otp-enroll audit), oldest first: of `p_user` (NULL:
-- everyone's), at or after `p_since` (Unix seconds; NULL: all), after row
-- `p_after` (the last one of the previous page), at most `p_limit`.
CREATE OR REPLACE FUNCTION pam_otp.admin_audit(p_user text, p_since bigint, p_after bigint, p_limit integer)
RETURNS TABLE (id bigint, at bigint, kind text, db_role text, client_addr text, command text,
               username text, token text, serial text, detail text, service text, rhost text,
               result text, claimed_uid bigint, claimed_login_uid text, claimed_sudo_user text,
               claimed_host text)
LANGUAGE sql STABLE SECURITY DEFINER
SET search_path = pg_catalog, pam_otp, pg_temp
AS $$
    SELECT a.id, a.at, a.kind, a.db_role, host(a.client_addr), a.command, a.username, a.token,
           a.serial, a.detail, a.service, a.rhost, a.result, a.claimed_uid, a.claimed_login_uid,
           a.claimed_sudo_user, a.claimed_host
      FROM pam_otp.audit a
     WHERE (p_user IS NULL OR a.username = p_user)
       AND (p_since IS NULL OR a.at >= p_since)
       AND a.id > coalesce(p_after, 0)
     ORDER BY a.id
     LIMIT least(greatest(coalesce(p_limit, 1000), 1), 10000)
$$;

-- ---- privileges ----------------------------------------------------------

REVOKE ALL ON ALL TABLES IN SCHEMA pam_otp FROM PUBLIC;
REVOKE ALL ON ALL SEQUENCES IN SCHEMA pam_otp FROM PUBLIC;
REVOKE ALL ON ALL FUNCTIONS IN SCHEMA pam_otp FROM PUBLIC;
REVOKE ALL ON SCHEMA pam_otp FROM PUBLIC;
GRANT USAGE ON SCHEMA pam_otp TO pam_otp_host, pam_otp_admin;

GRANT EXECUTE ON FUNCTION
    pam_otp.login_info(text),
    pam_otp.login_info(text, text, text, bigint),
    pam_otp.verify(text, text, text, bigint, integer, integer, integer, bigint),
    pam_otp.verify(text, text, text, bigint, integer, integer, integer, bigint, text, text),
    pam_otp.verify_code(text, text, text, bigint, integer, integer, integer, bigint, text, text),
    pam_otp.verify_no_token(text, text, integer, integer, bigint, boolean, text, text),
    pam_otp.enroll(text, jsonb),
    pam_otp.otp_code(bytea, bigint, integer, text)
    TO pam_otp_host, pam_otp_admin;

GRANT EXECUTE ON FUNCTION
    pam_otp.admin_read(text, boolean),
    pam_otp.admin_write(text, jsonb),
    pam_otp.admin_remove(text),
    pam_otp.admin_remove(text, bigint),
    pam_otp.admin_pending(text),
    pam_otp.admin_set_pending(text, boolean),
    pam_otp.admin_set_pending(text, boolean, bigint),
    pam_otp.admin_set_exemption(text, bigint, bigint, bigint, text, text),
    pam_otp.admin_unexempt(text),
    pam_otp.admin_exemptions(text),
    pam_otp.admin_clear_unenrolled(text),
    pam_otp.admin_owners(),
    pam_otp.admin_remove_orphan(text, text, bigint),
    pam_otp.admin_users(),
    pam_otp.admin_census(integer, bigint),
    pam_otp.admin_inventory_read(boolean),
    pam_otp.admin_inventory_write(text),
    pam_otp.admin_record_change(text, text, text, text, text, bigint, text, text, text),
    pam_otp.admin_audit(text, bigint, bigint, integer)
    TO pam_otp_admin;

-- otp_code calls hmac as the caller (it is not SECURITY DEFINER: it needs
-- no table), so the roles that may call it may call hmac too.
GRANT EXECUTE ON FUNCTION pam_otp.hmac(bytea, bytea, text) TO pam_otp_host, pam_otp_admin;

-- No role but the owner may write to the audit table: a grant made by
-- hand (GRANT DELETE ON pam_otp.audit TO ops) does not survive db init.
DO $$
DECLARE
    g text;
BEGIN
    FOR g IN SELECT DISTINCT a.grantee::regrole::text
               FROM pg_class c, aclexplode(c.relacl) a
              WHERE c.oid = 'pam_otp.audit'::regclass AND a.grantee <> c.relowner
                AND a.grantee <> 0
                AND a.privilege_type IN ('INSERT', 'UPDATE', 'DELETE', 'TRUNCATE')
    LOOP
        EXECUTE format('REVOKE INSERT, UPDATE, DELETE, TRUNCATE ON pam_otp.audit FROM %s', g);
    END LOOP;
END
$$;

-- The retention, applied once per db init.
SELECT pam_otp.audit_purge();

COMMIT;
