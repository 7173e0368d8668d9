"""Classified (mật) records and the log entries that name them: the one home of the rule.

A record is classified when its chế độ sử dụng is 03 (mật): a document's ``Mode``, a hồ sơ's
``Rights``. A document filed in a classified hồ sơ (as its own hồ sơ or as a member) is
treated as classified too: the hồ sơ's protection covers what it holds.

Classified records never leave the appliance. Whether a log entry may travel is decided from
the entry alone and the current set of classified records, never from a list of entry kinds:

- every entry *names* the records it is about: its target (``type``/``id``), and every record
  id or mã hồ sơ written anywhere in its data, at any depth and inside any text (a contents
  list, a destruction list, a warning that quotes a document: each carries the ids it is
  about). Ids are random UUIDs and mã hồ sơ have a fixed shape, so both are found without
  knowing the entry's kind;
- an entry *carries* a classified record's fields when any map inside it says ``Mode``/
  ``Rights`` 03 or ``classified: true``.

An entry that names a classified record or carries one's fields is withheld: it travels as
its RFC 9162 leaf hash only. The centre refuses any full entry that carries such fields
(``carries_classified``), whatever its kind. Every entry is built with a kind from
``appliance.kinds``; ``tests/test_classified.py`` emits every kind with classified records
involved and checks that no classified text, id, mã hồ sơ or content hash survives in what
would be sent.
"""

from __future__ import annotations

import json
import re
import sqlite3
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

CLASSIFIED = "03"  # code list ``mode``: 01 công khai, 02 sử dụng có điều kiện, 03 mật
MARKER_KEYS = ("Mode", "Rights")

_SHA256 = re.compile(r"[0-9a-f]{64}")
_UUID = re.compile(r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}")


# SQL conditions on a projection row (documents: Mode; files: Rights), for list queries.
DOCUMENT_IS_CLASSIFIED_SQL = "coalesce(\"Mode\", '01') = '03'"
DOCUMENT_NOT_CLASSIFIED_SQL = "coalesce(\"Mode\", '01') <> '03'"
FILE_NOT_CLASSIFIED_SQL = "coalesce(\"Rights\", '01') <> '03'"


def is_classified(data: Mapping[str, Any]) -> bool:
    """Whether a record's own fields make it classified (a document's Mode, a hồ sơ's Rights)."""
    return any(data.get(k) == CLASSIFIED for k in MARKER_KEYS)


def _strings(value: Any) -> Iterator[str]:
    """Every text inside a decoded entry or its data: map keys and values, at any depth."""
    stack = [value]
    while stack:
        v = stack.pop()
        if isinstance(v, str):
            yield v
        elif isinstance(v, Mapping):
            for k, x in v.items():
                if isinstance(k, str):
                    yield k
                stack.append(x)
        elif isinstance(v, list | tuple):
            stack.extend(v)


def classified_maps(value: Any) -> Iterator[Mapping[str, Any]]:
    """Every map inside ``value`` that holds a classified record's fields (Mode/Rights 03, or
    a list item marked ``classified: true``), at any depth."""
    stack = [value]
    while stack:
        v = stack.pop()
        if isinstance(v, Mapping):
            if is_classified(v) or v.get("classified") is True:
                yield v
            stack.extend(v.values())
        elif isinstance(v, list | tuple):
            stack.extend(v)


def carries_classified(value: Any) -> bool:
    """Whether any map inside ``value`` holds a classified record's fields."""
    return next(classified_maps(value), None) is not None


def named_ids(entry: Mapping[str, Any]) -> set[str]:
    """Record ids an entry names: its target and every id written anywhere in its data."""
    out: set[str] = set()
    target = entry.get("id")
    if isinstance(target, str):
        out.add(target)
    for s in _strings(entry.get("data")):
        if len(s) >= 36:
            out.update(_UUID.findall(s))
    return out


@dataclass(frozen=True)
class ClassifiedSet:
    """The records that are classified now, and the content files only they reference."""

    ids: frozenset[str] = frozenset()  # documents and hồ sơ
    file_codes: frozenset[str] = frozenset()
    content: frozenset[str] = frozenset()  # SHA-256 (hex) of their content files
    _codes_re: re.Pattern[str] | None = field(default=None, compare=False, repr=False)

    @classmethod
    def of(cls, ids: set[str], file_codes: set[str], content: set[str]) -> ClassifiedSet:
        pattern = None
        if file_codes:
            # Longest first, so that a mã hồ sơ that is a prefix of another never hides it.
            alts = sorted(file_codes, key=len, reverse=True)
            pattern = re.compile("|".join(re.escape(c) for c in alts))
        return cls(frozenset(ids), frozenset(file_codes), frozenset(content), pattern)

    def names_classified(self, entry: Mapping[str, Any]) -> bool:
        """Whether the entry names a classified record (by id or mã hồ sơ) or its content."""
        if not (self.ids or self.content):
            return False
        target = entry.get("id")
        if isinstance(target, str) and target in self.ids:
            return True
        refs = entry.get("refs") or ()
        if self.content and any(bytes(r).hex() in self.content for r in refs):
            return True
        for s in _strings(entry.get("data")):
            if len(s) < 12:
                continue
            if self._codes_re is not None and self._codes_re.search(s):
                return True
            if len(s) >= 36 and not self.ids.isdisjoint(_UUID.findall(s)):
                return True
            if len(s) >= 64 and not self.content.isdisjoint(_SHA256.findall(s.lower())):
                return True
        return False

    def withholds(self, entry: Mapping[str, Any]) -> bool:
        """Whether a decoded log entry must travel as its leaf hash only."""
        return carries_classified(entry.get("data")) or self.names_classified(entry)


def load(conn: sqlite3.Connection) -> ClassifiedSet:
    """The classified records of an appliance's projections (its current state)."""
    files = conn.execute(
        'SELECT id, "FileCode" FROM files WHERE "Rights" = ?', (CLASSIFIED,)
    ).fetchall()
    codes = {str(r[1]) for r in files}
    ids = {str(r[0]) for r in files}
    content: set[str] = set()
    rows = conn.execute(
        'SELECT id, "Content" FROM documents WHERE "Mode" = ? OR "FileCode" IN '
        '(SELECT "FileCode" FROM files WHERE "Rights" = ?) OR id IN (SELECT "DocumentId" '
        'FROM memberships m JOIN files f ON f."FileCode" = m."FileCode" WHERE f."Rights" = ?)',
        (CLASSIFIED, CLASSIFIED, CLASSIFIED),
    ).fetchall()
    for doc_id, body in rows:
        ids.add(str(doc_id))
        for c in json.loads(body) if body else ():
            content.add(str(c.get("sha256")))
    return ClassifiedSet.of(ids, codes, content)


def file_is_classified(conn: sqlite3.Connection, file_code: Any) -> bool:
    """Whether the hồ sơ ``file_code`` is classified (its Rights is 03)."""
    return bool(file_code) and conn.execute(
        'SELECT 1 FROM files WHERE "FileCode" = ? AND "Rights" = ?', (file_code, CLASSIFIED)
    ).fetchone() is not None


def document_is_classified(
    conn: sqlite3.Connection,
    data: Mapping[str, Any],
    doc_id: str | None = None,
    projected: bool = False,
) -> bool:
    """Whether a document is classified, by itself or by a hồ sơ it is filed in: its new
    version ``data``, or (``projected``) the version its projection row holds now."""
    if projected:
        row = conn.execute(
            'SELECT "Mode", "FileCode" FROM documents WHERE id = ?', (doc_id,)
        ).fetchone()
        if row is None:
            return False
        data = {"Mode": row[0], "FileCode": row[1]}
    if is_classified(data) or file_is_classified(conn, data.get("FileCode")):
        return True
    if doc_id is None:
        return False
    return conn.execute(
        'SELECT 1 FROM memberships m JOIN files f ON f."FileCode" = m."FileCode" '
        'WHERE m."DocumentId" = ? AND f."Rights" = ?', (doc_id, CLASSIFIED)
    ).fetchone() is not None
