"""The centre's PostgreSQL schema as a versioned list of SQL steps, and the migrator that
applies the missing ones (once each, in a transaction, under an advisory lock, so that
workers starting together do not race)."""

from __future__ import annotations

from typing import Any

import psycopg

from ..errors import StorageError
from .sql_links import PG_SCHEMA as LINKS_SCHEMA
from .sql_ltv import PG_SCHEMA as LTV_SCHEMA

MIGRATION_LOCK = 0x6C757472  # "lutr": one migrator at a time across workers

# (version, description, SQL). Append only: never edit a step that has shipped.
MIGRATIONS: list[tuple[int, str, str]] = [
    (
        1,
        "initial centre schema",
        """
CREATE TABLE appliances (
  id TEXT PRIMARY KEY, org_id TEXT NOT NULL, org_name TEXT NOT NULL, origin TEXT NOT NULL,
  public_key_pem TEXT NOT NULL, backing TEXT NOT NULL, alg INTEGER NOT NULL,
  enrolled_at TEXT NOT NULL, status TEXT NOT NULL DEFAULT 'active',
  accepted_size BIGINT NOT NULL DEFAULT 0, accepted_root BYTEA NOT NULL DEFAULT '\\x',
  frontier BYTEA NOT NULL DEFAULT '\\x80', last_seq BIGINT NOT NULL DEFAULT 0,
  last_contact TEXT, claimed_size BIGINT NOT NULL DEFAULT 0, claimed_at TEXT,
  withheld BIGINT NOT NULL DEFAULT 0);
CREATE INDEX appliances_org ON appliances (org_id, id);
CREATE TABLE tokens (
  token_id BYTEA PRIMARY KEY, secret BYTEA NOT NULL, org_id TEXT NOT NULL,
  created_at TEXT NOT NULL, expires_at TEXT NOT NULL, used_by TEXT, used_at TEXT);
CREATE TABLE entries (
  appliance_id TEXT NOT NULL, idx BIGINT NOT NULL, leaf BYTEA NOT NULL, entry BYTEA,
  PRIMARY KEY (appliance_id, idx));
CREATE TABLE superseded_entries (
  appliance_id TEXT NOT NULL, idx BIGINT NOT NULL, leaf BYTEA NOT NULL, entry BYTEA,
  superseded_at TEXT NOT NULL);
CREATE INDEX superseded_entries_app ON superseded_entries (appliance_id, idx);
CREATE TABLE checkpoints (
  appliance_id TEXT NOT NULL, tree_size BIGINT NOT NULL, root BYTEA NOT NULL,
  cose BYTEA NOT NULL, frontier BYTEA NOT NULL, accepted_at TEXT NOT NULL,
  receipt BYTEA NOT NULL, superseded_at TEXT,
  PRIMARY KEY (appliance_id, tree_size, root));
CREATE TABLE responses (
  appliance_id TEXT NOT NULL, digest BYTEA NOT NULL, response BYTEA NOT NULL, at TEXT NOT NULL,
  PRIMARY KEY (appliance_id, digest));
CREATE TABLE nonces (
  appliance_id TEXT NOT NULL, nonce BYTEA NOT NULL, at TEXT NOT NULL,
  PRIMARY KEY (appliance_id, nonce));
CREATE TABLE content_refs (
  appliance_id TEXT NOT NULL, sha256 TEXT NOT NULL, size BIGINT NOT NULL,
  first_idx BIGINT NOT NULL, PRIMARY KEY (appliance_id, sha256));
CREATE INDEX content_refs_sha ON content_refs (sha256);
CREATE TABLE blobs (sha256 TEXT PRIMARY KEY, size BIGINT NOT NULL, stored_at TEXT NOT NULL);
CREATE TABLE documents (
  rid BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY, appliance_id TEXT NOT NULL,
  org_id TEXT NOT NULL, doc_id TEXT NOT NULL, version BIGINT NOT NULL,
  log_index BIGINT NOT NULL, direction TEXT, type_name TEXT, code_number TEXT,
  code_notation TEXT, organ_name TEXT, subject TEXT, issued_date TEXT, arrival_date TEXT,
  arrival_number BIGINT, year INTEGER, file_code TEXT, folded TEXT NOT NULL,
  data_json TEXT NOT NULL,
  words tsvector GENERATED ALWAYS AS
    (to_tsvector('simple', regexp_replace(folded, '[^[:alnum:]]+', ' ', 'g'))) STORED,
  UNIQUE (appliance_id, doc_id));
CREATE INDEX documents_org ON documents (org_id, year);
CREATE INDEX documents_app_idx ON documents (appliance_id, log_index);
CREATE INDEX documents_words ON documents USING gin (words);
CREATE TABLE parked (
  appliance_id TEXT NOT NULL, start BIGINT NOT NULL, "end" BIGINT NOT NULL,
  digest BYTEA NOT NULL, raw BYTEA NOT NULL, parked_at TEXT NOT NULL,
  PRIMARY KEY (appliance_id, digest));
CREATE TABLE anomalies (
  appliance_id TEXT NOT NULL, kind TEXT NOT NULL, detail TEXT NOT NULL,
  first_at TEXT NOT NULL, last_at TEXT NOT NULL, count BIGINT NOT NULL,
  PRIMARY KEY (appliance_id, kind));
CREATE TABLE alerts (
  id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY, appliance_id TEXT NOT NULL,
  kind TEXT NOT NULL, detail TEXT NOT NULL, raised_at TEXT NOT NULL, cleared_at TEXT,
  cleared_by TEXT);
CREATE INDEX alerts_app ON alerts (appliance_id) WHERE cleared_at IS NULL;
CREATE TABLE forks (
  id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY, appliance_id TEXT NOT NULL,
  detected_at TEXT NOT NULL, accepted_size BIGINT NOT NULL,
  accepted_checkpoint BYTEA NOT NULL, claimed_size BIGINT NOT NULL,
  claimed_checkpoint BYTEA NOT NULL, diverge_index BIGINT, request BYTEA NOT NULL,
  reason TEXT NOT NULL);
CREATE INDEX forks_app ON forks (appliance_id, id);
""",
    ),
    (
        2,
        "appliance replacement: hand-over keys and replacement tokens",
        """
CREATE TABLE appliance_keys (
  key_id TEXT PRIMARY KEY, appliance_id TEXT NOT NULL, public_key_pem TEXT NOT NULL,
  backing TEXT NOT NULL, alg INTEGER NOT NULL, from_size BIGINT NOT NULL,
  added_at TEXT NOT NULL);
CREATE INDEX appliance_keys_app ON appliance_keys (appliance_id, from_size);
CREATE TABLE replacements (
  token_id BYTEA PRIMARY KEY, appliance_id TEXT NOT NULL, created_at TEXT NOT NULL,
  new_key_id TEXT, started_at TEXT, completed_at TEXT, handover_size BIGINT);
CREATE INDEX replacements_key ON replacements (new_key_id);
""",
    ),
    (3, "signature upgrade at the centre (PAdES B-LTA)", LTV_SCHEMA),
    (
        4,
        "the public catalogue (hồ sơ, fonds, releases, published records), readers, requests",
        """
CREATE TABLE cat_fonds (
  appliance_id TEXT NOT NULL, fond_code TEXT NOT NULL, version BIGINT NOT NULL,
  data_json TEXT NOT NULL, log_index BIGINT NOT NULL, PRIMARY KEY (appliance_id, fond_code));
CREATE TABLE cat_files (
  appliance_id TEXT NOT NULL, file_code TEXT NOT NULL, file_id TEXT NOT NULL,
  version BIGINT NOT NULL, data_json TEXT NOT NULL, log_index BIGINT NOT NULL,
  PRIMARY KEY (appliance_id, file_code));
CREATE TABLE cat_releases (
  appliance_id TEXT NOT NULL, file_code TEXT NOT NULL, basis TEXT NOT NULL,
  record_type TEXT NOT NULL, record_id TEXT NOT NULL, version BIGINT NOT NULL,
  at TEXT NOT NULL, log_index BIGINT NOT NULL,
  PRIMARY KEY (appliance_id, file_code, basis, record_type, record_id));
CREATE INDEX cat_releases_record ON cat_releases (appliance_id, record_id);
CREATE TABLE cat_withheld (
  appliance_id TEXT NOT NULL, record_type TEXT NOT NULL, record_key TEXT NOT NULL,
  reason TEXT NOT NULL, by_user TEXT NOT NULL, at TEXT NOT NULL,
  PRIMARY KEY (appliance_id, record_type, record_key));
CREATE TABLE catalogue (
  rid BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY, oai_id TEXT NOT NULL UNIQUE,
  kind TEXT NOT NULL, appliance_id TEXT NOT NULL, org_id TEXT NOT NULL,
  fond_code TEXT NOT NULL, file_code TEXT NOT NULL, doc_id TEXT, year INTEGER,
  type_code TEXT, title TEXT NOT NULL, folded TEXT NOT NULL, meta_json TEXT NOT NULL,
  datestamp TEXT NOT NULL, deleted INTEGER NOT NULL DEFAULT 0,
  words tsvector GENERATED ALWAYS AS
    (to_tsvector('simple', regexp_replace(folded, '[^[:alnum:]]+', ' ', 'g'))) STORED);
CREATE INDEX catalogue_stamp ON catalogue (datestamp, rid);
CREATE INDEX catalogue_set ON catalogue (fond_code, datestamp, rid);
CREATE INDEX catalogue_file ON catalogue (appliance_id, file_code);
CREATE INDEX catalogue_browse ON catalogue (kind, deleted, fond_code, year);
CREATE INDEX catalogue_words ON catalogue USING gin (words);
CREATE TABLE readers (
  username TEXT PRIMARY KEY, full_name TEXT NOT NULL, identity_no TEXT,
  pw_hash BYTEA NOT NULL, created_at TEXT NOT NULL, disabled INTEGER NOT NULL DEFAULT 0);
CREATE TABLE reader_sessions (
  token_hash BYTEA PRIMARY KEY, username TEXT NOT NULL, expires_at TEXT NOT NULL);
CREATE TABLE reader_requests (
  id TEXT PRIMARY KEY, username TEXT NOT NULL, oai_id TEXT NOT NULL, form TEXT NOT NULL,
  purpose TEXT NOT NULL, status TEXT NOT NULL, created_at TEXT NOT NULL, decided_by TEXT,
  decided_at TEXT, note TEXT, copy_sha256 TEXT, copy_pdf BYTEA);
CREATE INDEX reader_requests_user ON reader_requests (username, created_at);
CREATE INDEX reader_requests_status ON reader_requests (status, created_at);
""",
    ),
    (5, "content a box stores once and does not send on its own", LINKS_SCHEMA),
]


def migrate(conn: psycopg.Connection[Any]) -> list[int]:
    """Apply the steps of ``MIGRATIONS`` the database lacks; returns the versions applied."""
    applied: list[int] = []
    with conn.transaction():
        conn.execute("SELECT pg_advisory_xact_lock(%s)", (MIGRATION_LOCK,))
        conn.execute(
            "CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY, "
            "description TEXT NOT NULL, applied_at TIMESTAMPTZ NOT NULL DEFAULT now())"
        )
        done = {int(r[0]) for r in conn.execute("SELECT version FROM schema_migrations")}
        newest = max((v for v, _, _ in MIGRATIONS), default=0)
        if done and max(done) > newest:
            raise StorageError(
                f"the database schema is version {max(done)}, newer than this build "
                f"({newest}); upgrade luutru on every worker"
            )
        for version, description, sql in MIGRATIONS:
            if version in done:
                continue
            conn.execute(sql.encode())
            conn.execute(
                "INSERT INTO schema_migrations (version, description) VALUES (%s, %s)",
                (version, description),
            )
            applied.append(version)
    return applied
