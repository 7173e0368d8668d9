"""The catalogue's and readers' queries, written once for SQLite and PostgreSQL.

Mixed into ``sql_storage.SqlView`` / ``SqlTx`` (``self.c`` the connection, ``self.d`` the
dialect); the shared SQL rules of ``dialect.py`` hold here too. Only ``catalogue.py`` writes
the ``catalogue`` table, through ``put_catalogue``, with rows the publishing rule passed.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from .catalogue_store import (
    CatalogueInputs,
    CatalogueRow,
    ReaderRecord,
    ReaderRequest,
    Release,
    SearchQuery,
)

CAT_COLS = ("oai_id", "kind", "appliance_id", "org_id", "fond_code", "file_code", "doc_id",
            "year", "type_code", "title", "folded", "meta_json", "datestamp", "deleted")
_CAT_SELECT = "SELECT " + ", ".join(CAT_COLS) + ", rid FROM catalogue"
_REQ_COLS = ("id, username, oai_id, form, purpose, status, created_at, decided_by, decided_at, "
             "note, copy_sha256")


def _row(r: Sequence[Any]) -> CatalogueRow:
    return CatalogueRow(r[0], r[1], r[2], r[3], r[4], r[5], r[6], r[7], r[8], r[9], r[10],
                        r[11], r[12], bool(r[13]), int(r[14]))


def _request(r: Sequence[Any]) -> ReaderRequest:
    return ReaderRequest(*r)


class CatalogueQueries:
    """Reads (mixed into SqlView)."""

    c: Any
    d: Any

    def _q(self, sql: str, args: Sequence[Any] = ()) -> list[Any]:
        return self.d.rows(self.c, sql, args)  # type: ignore[no-any-return]

    def catalogue_inputs(self, appliance_id: str, file_codes: Sequence[str]
                         ) -> CatalogueInputs:
        cond, arg = self.d.among("file_code", list(file_codes))
        files = {r[0]: (int(r[1]), json.loads(r[2])) for r in self._q(
            f"SELECT file_code, version, data_json FROM cat_files WHERE appliance_id = ? "
            f"AND {cond}", (appliance_id, arg))}
        items: dict[str, dict[tuple[str, str], int]] = {}
        bases: dict[str, set[str]] = {}
        # A transfer and a later publication may list a record at different versions: the
        # commune's latest statement (the higher log index) is the one that counts.
        for code, basis, rtype, rid, version, _ in self._q(
                "SELECT file_code, basis, record_type, record_id, version, log_index FROM "
                f"cat_releases WHERE appliance_id = ? AND {cond} ORDER BY log_index",
                (appliance_id, arg)):
            items.setdefault(code, {})[(rtype, rid)] = int(version)
            bases.setdefault(code, set()).add(basis)
        releases = {k: Release(k, v, frozenset(bases[k])) for k, v in items.items()}
        doc_ids = sorted({i for r in releases.values() for (t, i) in r.items if t == "document"})
        dcond, darg = self.d.among("doc_id", doc_ids)
        documents = {r[0]: (int(r[1]), json.loads(r[2])) for r in self._q(
            f"SELECT doc_id, version, data_json FROM documents WHERE appliance_id = ? "
            f"AND {dcond}", (appliance_id, darg))} if doc_ids else {}
        withheld = frozenset((str(r[0]), str(r[1])) for r in self._q(
            "SELECT record_type, record_key FROM cat_withheld WHERE appliance_id = ?",
            (appliance_id,)))
        fonds = {r[0]: json.loads(r[1]) for r in self._q(
            "SELECT fond_code, data_json FROM cat_fonds WHERE appliance_id = ?",
            (appliance_id,))}
        return CatalogueInputs(files, releases, documents, withheld, fonds)

    def catalogue_rows(self, appliance_id: str, file_codes: Sequence[str]
                       ) -> dict[str, CatalogueRow]:
        cond, arg = self.d.among("file_code", list(file_codes))
        return {r[0]: _row(r) for r in self._q(
            f"{_CAT_SELECT} WHERE appliance_id = ? AND {cond}", (appliance_id, arg))}

    def release_codes_of(self, appliance_id: str, record_ids: Sequence[str]) -> set[str]:
        if not record_ids:
            return set()
        cond, arg = self.d.among("record_id", list(record_ids))
        return {str(r[0]) for r in self._q(
            f"SELECT DISTINCT file_code FROM cat_releases WHERE appliance_id = ? AND {cond}",
            (appliance_id, arg))}

    def cat_file_codes(self, appliance_id: str) -> list[str]:
        return sorted({str(r[0]) for r in self._q(
            "SELECT file_code FROM cat_files WHERE appliance_id = ? UNION "
            "SELECT file_code FROM cat_releases WHERE appliance_id = ? UNION "
            "SELECT file_code FROM catalogue WHERE appliance_id = ?",
            (appliance_id, appliance_id, appliance_id))})

    def catalogue_search(self, q: SearchQuery) -> tuple[list[CatalogueRow], int | None]:
        where: list[str] = ["deleted = 0"]
        args: list[Any] = []
        match = self.d.text_match(q.folded, "catalogue")
        if match is not None:
            where.append(match[0])
            args.append(match[1])
        for col, value in (("fond_code", q.fonds), ("year", q.year), ("type_code", q.type_code),
                           ("kind", q.kind)):
            if value is not None and value != "":
                where.append(f"{col} = ?")
                args.append(value)
        cond = " AND ".join(where)
        # Newest published first: a common word walks the row order and stops at the page,
        # a rare one is looked up in the word index (no sort of every match either way). One
        # row more than the page says whether another page follows; nothing counts every
        # match (a count of a common word, or of a filter alone, reads the whole catalogue).
        rows = self.d.search(self.c, f"{_CAT_SELECT} WHERE {cond} ORDER BY rid DESC "
                             "LIMIT ? OFFSET ?", [*args, q.limit + 1, q.offset])
        more = len(rows) > q.limit
        rows = rows[: q.limit]
        total = None if more else q.offset + len(rows)
        return [_row(r) for r in rows], total

    def catalogue_item(self, oai_id: str) -> CatalogueRow | None:
        rows = self._q(f"{_CAT_SELECT} WHERE oai_id = ?", (oai_id,))
        return _row(rows[0]) if rows else None

    def catalogue_children(self, appliance_id: str, file_code: str) -> list[CatalogueRow]:
        return [_row(r) for r in self._q(
            f"{_CAT_SELECT} WHERE appliance_id = ? AND file_code = ? AND kind = 'document' "
            "AND deleted = 0 ORDER BY title, rid", (appliance_id, file_code))]

    def catalogue_sets(self) -> list[tuple[str, str, int]]:
        rows = self._q(
            "SELECT c.fond_code, max(f.data_json), count(*) FROM catalogue c LEFT JOIN "
            "cat_fonds f ON f.appliance_id = c.appliance_id AND f.fond_code = c.fond_code "
            "WHERE c.kind = 'file' AND c.deleted = 0 GROUP BY c.fond_code ORDER BY c.fond_code")
        out = []
        for code, data, n in rows:
            name = json.loads(data).get("FondName") if data else None
            out.append((str(code), str(name or f"Phông {code}"), int(n)))
        return out

    def catalogue_facets(self) -> tuple[list[int], list[str]]:
        years = [int(r[0]) for r in self._q(
            "SELECT DISTINCT year FROM catalogue WHERE deleted = 0 AND year IS NOT NULL "
            "ORDER BY 1 DESC")]
        types = [str(r[0]) for r in self._q(
            "SELECT DISTINCT type_code FROM catalogue WHERE deleted = 0 AND type_code IS NOT "
            "NULL ORDER BY 1")]
        return years, types

    def oai_page(self, fonds: str | None, start: str | None, until: str | None,
                 after: tuple[str, int] | None, limit: int) -> list[CatalogueRow]:
        where: list[str] = []
        args: list[Any] = []
        if fonds:
            where.append("fond_code = ?")
            args.append(fonds)
        if start:
            where.append("datestamp >= ?")
            args.append(start)
        if until:
            where.append("datestamp <= ?")
            args.append(until)
        if after:
            where.append("(datestamp > ? OR (datestamp = ? AND rid > ?))")
            args += [after[0], after[0], after[1]]
        cond = " WHERE " + " AND ".join(where) if where else ""
        return [_row(r) for r in self._q(
            f"{_CAT_SELECT}{cond} ORDER BY datestamp, rid LIMIT ?", [*args, limit])]

    def oai_earliest(self) -> str | None:
        rows = self._q("SELECT min(datestamp) FROM catalogue")
        return str(rows[0][0]) if rows and rows[0][0] else None

    def withheld_list(self) -> list[tuple[str, str, str, str, str, str]]:
        return [tuple(str(v) for v in r) for r in self._q(  # type: ignore[misc]
            "SELECT appliance_id, record_type, record_key, reason, by_user, at FROM "
            "cat_withheld ORDER BY at DESC")]

    def reader(self, username: str) -> ReaderRecord | None:
        rows = self._q("SELECT username, full_name, identity_no, pw_hash, created_at, disabled "
                       "FROM readers WHERE username = ?", (username,))
        if not rows:
            return None
        r = rows[0]
        return ReaderRecord(r[0], r[1], r[2], bytes(r[3]), r[4], bool(r[5]))

    def reader_session(self, token_hash: bytes, now: str) -> str | None:
        rows = self._q("SELECT username FROM reader_sessions WHERE token_hash = ? AND "
                       "expires_at > ?", (token_hash, now))
        return str(rows[0][0]) if rows else None

    def reader_requests(self, username: str | None = None, status: str | None = None
                        ) -> list[ReaderRequest]:
        where: list[str] = []
        args: list[Any] = []
        if username is not None:
            where.append("username = ?")
            args.append(username)
        if status is not None:
            where.append("status = ?")
            args.append(status)
        cond = " WHERE " + " AND ".join(where) if where else ""
        return [_request(r) for r in self._q(
            f"SELECT {_REQ_COLS} FROM reader_requests{cond} ORDER BY created_at DESC, id", args)]

    def reader_request(self, request_id: str) -> ReaderRequest | None:
        rows = self._q(f"SELECT {_REQ_COLS} FROM reader_requests WHERE id = ?", (request_id,))
        return _request(rows[0]) if rows else None

    def reader_copy(self, request_id: str) -> bytes | None:
        rows = self._q("SELECT copy_pdf FROM reader_requests WHERE id = ? AND status = "
                       "'approved'", (request_id,))
        return bytes(rows[0][0]) if rows and rows[0][0] is not None else None


    def document_data(self, appliance_id: str, doc_id: str) -> dict[str, Any] | None:
        rows = self._q("SELECT data_json FROM documents WHERE appliance_id = ? AND doc_id = ?",
                       (appliance_id, doc_id))
        return json.loads(rows[0][0]) if rows else None


class CatalogueWrites:
    """Writes (mixed into SqlTx)."""

    c: Any
    d: Any

    def _w(self, sql: str, args: Sequence[Any] = ()) -> int:
        return self.d.run(self.c, sql, args)  # type: ignore[no-any-return]

    def put_cat_fonds(self, appliance_id: str, rows: Sequence[tuple[str, int, str, int]]
                      ) -> None:
        self.d.run_many(self.c, (
            "INSERT INTO cat_fonds (appliance_id, fond_code, version, data_json, log_index) "
            "VALUES (?, ?, ?, ?, ?) ON CONFLICT (appliance_id, fond_code) DO UPDATE SET "
            "version = excluded.version, data_json = excluded.data_json, "
            "log_index = excluded.log_index WHERE excluded.log_index > cat_fonds.log_index"),
            [(appliance_id, *r) for r in rows])

    def put_cat_files(self, appliance_id: str,
                      rows: Sequence[tuple[str, str, int, str, int]]) -> None:
        self.d.run_many(self.c, (
            "INSERT INTO cat_files (appliance_id, file_code, file_id, version, data_json, "
            "log_index) VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (appliance_id, file_code) DO "
            "UPDATE SET file_id = excluded.file_id, version = excluded.version, data_json = "
            "excluded.data_json, log_index = excluded.log_index "
            "WHERE excluded.log_index > cat_files.log_index"),
            [(appliance_id, *r) for r in rows])

    def put_release(self, appliance_id: str, file_code: str, basis: str,
                    items: Sequence[tuple[str, str, int]], at: str, log_index: int) -> None:
        self._w("DELETE FROM cat_releases WHERE appliance_id = ? AND file_code = ? AND "
                "basis = ?", (appliance_id, file_code, basis))
        self.d.run_many(self.c, (
            "INSERT INTO cat_releases (appliance_id, file_code, basis, record_type, record_id, "
            "version, at, log_index) VALUES (?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING"),
            [(appliance_id, file_code, basis, t, i, v, at, log_index) for t, i, v in items])

    def drop_releases(self, appliance_id: str, file_code: str) -> None:
        self._w("DELETE FROM cat_releases WHERE appliance_id = ? AND file_code = ?",
                (appliance_id, file_code))

    def clear_catalogue_sources(self, appliance_id: str) -> None:
        for table in ("cat_fonds", "cat_files", "cat_releases"):
            self._w(f"DELETE FROM {table} WHERE appliance_id = ?", (appliance_id,))

    def put_catalogue(self, rows: Sequence[CatalogueRow]) -> None:
        if not rows:
            return
        updates = ", ".join(f"{c} = excluded.{c}" for c in CAT_COLS[1:])
        self.d.run_many(self.c, (
            f"INSERT INTO catalogue ({', '.join(CAT_COLS)}) VALUES "
            f"({', '.join('?' for _ in CAT_COLS)}) ON CONFLICT (oai_id) DO UPDATE SET "
            f"{updates}"),
            [tuple(int(v) if isinstance(v, bool) else v
                   for v in (getattr(r, c) for c in CAT_COLS)) for r in rows])

    def set_withheld(self, appliance_id: str, record_type: str, key: str, reason: str,
                     by: str, at: str) -> None:
        self._w("INSERT INTO cat_withheld (appliance_id, record_type, record_key, reason, "
                "by_user, at) VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (appliance_id, "
                "record_type, record_key) DO UPDATE SET reason = excluded.reason, "
                "by_user = excluded.by_user, at = excluded.at",
                (appliance_id, record_type, key, reason, by, at))

    def clear_withheld(self, appliance_id: str, record_type: str, key: str) -> bool:
        return self._w("DELETE FROM cat_withheld WHERE appliance_id = ? AND record_type = ? "
                       "AND record_key = ?", (appliance_id, record_type, key)) > 0

    def add_reader(self, rec: ReaderRecord) -> None:
        self._w("INSERT INTO readers (username, full_name, identity_no, pw_hash, created_at, "
                "disabled) VALUES (?, ?, ?, ?, ?, ?)",
                (rec.username, rec.full_name, rec.identity_no, rec.pw_hash, rec.created_at,
                 int(rec.disabled)))

    def add_reader_session(self, token_hash: bytes, username: str, expires_at: str) -> None:
        self._w("INSERT INTO reader_sessions (token_hash, username, expires_at) VALUES "
                "(?, ?, ?)", (token_hash, username, expires_at))

    def end_reader_session(self, token_hash: bytes) -> None:
        self._w("DELETE FROM reader_sessions WHERE token_hash = ?", (token_hash,))

    def add_reader_request(self, req: ReaderRequest) -> None:
        self._w(f"INSERT INTO reader_requests ({_REQ_COLS}) VALUES "
                "(?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (req.id, req.username, req.oai_id, req.form, req.purpose, req.status,
                 req.created_at, req.decided_by, req.decided_at, req.note, req.copy_sha256))

    def decide_reader_request(self, request_id: str, status: str, by: str, at: str, note: str,
                              copy_sha256: str | None, copy_pdf: bytes | None) -> None:
        self._w("UPDATE reader_requests SET status = ?, decided_by = ?, decided_at = ?, "
                "note = ?, copy_sha256 = ?, copy_pdf = ? WHERE id = ?",
                (status, by, at, note, copy_sha256, copy_pdf, request_id))
