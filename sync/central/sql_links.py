"""Content an appliance never sends on its own (table ``content_links``), for both engines;
mixed into ``SqlView`` and ``SqlTx`` (``sql_storage``) like the signature upgrade's queries.

A box stores and sends each scanned page once (appliance/versions.py): the unsigned PDF/A is
the first bytes of its signed version (``within``: checked by hashing that prefix of the
container when it arrives), and the lossless assembly of a scan is released or kept on the
box (``unsent``: its hash is provenance only). Neither is listed as missing.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Generic

from .dialect import C, Dialect
from .storage import ContentLink

COLS = "appliance_id, sha256, kind, container, size, first_idx, checked"
SQLITE_SCHEMA = """
CREATE TABLE IF NOT EXISTS content_links (
  appliance_id TEXT NOT NULL, sha256 TEXT NOT NULL, kind TEXT NOT NULL, container TEXT,
  size INTEGER NOT NULL, first_idx INTEGER NOT NULL, checked TEXT,
  PRIMARY KEY (appliance_id, sha256)) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS content_links_container ON content_links (container);
"""
PG_SCHEMA = """
CREATE TABLE content_links (
  appliance_id TEXT NOT NULL, sha256 TEXT NOT NULL, kind TEXT NOT NULL, container TEXT,
  size BIGINT NOT NULL, first_idx BIGINT NOT NULL, checked TEXT,
  PRIMARY KEY (appliance_id, sha256));
CREATE INDEX content_links_container ON content_links (container);
"""
# Appended to "no blob stored" wherever missing content is counted or listed.
NOT_LINKED = (
    "NOT EXISTS (SELECT 1 FROM content_links l WHERE l.appliance_id = r.appliance_id "
    "AND l.sha256 = r.sha256)"
)


def _link(r: Sequence[Any]) -> ContentLink:
    """A row of ``COLS`` (its appliance id left out)."""
    return ContentLink(r[1], r[2], r[3], int(r[4]), int(r[5]), r[6])


class SqlLinksView(Generic[C]):
    c: C
    d: Dialect[C]

    def links_within(self, container: str) -> list[tuple[str, ContentLink]]:
        """(appliance, version) of each version that is the first bytes of ``container``, not
        yet checked against it."""
        rows = self.d.rows(
            self.c,
            f"SELECT {COLS} FROM content_links WHERE container = ? AND kind = 'within' "
            "AND checked IS NULL ORDER BY appliance_id, sha256",
            (container,),
        )
        return [(str(r[0]), _link(r)) for r in rows]

    def unchecked_containers(self, appliance_id: str) -> list[str]:
        rows = self.d.rows(
            self.c,
            "SELECT DISTINCT container FROM content_links WHERE appliance_id = ? AND "
            "kind = 'within' AND checked IS NULL ORDER BY container",
            (appliance_id,),
        )
        return [str(r[0]) for r in rows]

    def links(self, appliance_id: str) -> list[ContentLink]:
        rows = self.d.rows(
            self.c,
            f"SELECT {COLS} FROM content_links WHERE appliance_id = ? ORDER BY first_idx, sha256",
            (appliance_id,),
        )
        return [_link(r) for r in rows]


class SqlLinksTx(SqlLinksView[C]):
    def add_content_links(self, appliance_id: str, links: Sequence[ContentLink]) -> None:
        if links:
            self.d.run_many(
                self.c,
                "INSERT INTO content_links (appliance_id, sha256, kind, container, size, "
                "first_idx) VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (appliance_id, sha256) "
                "DO NOTHING",
                [(appliance_id, x.sha256, x.kind, x.container, x.size, x.first_index)
                 for x in links],
            )

    def check_link(self, appliance_id: str, sha256: str, ok: bool, at: str) -> None:
        """A checked prefix is kept as checked; a failed one goes, so the file is missing."""
        if ok:
            self.d.run(
                self.c,
                "UPDATE content_links SET checked = ? WHERE appliance_id = ? AND sha256 = ?",
                (at, appliance_id, sha256),
            )
        else:
            self.d.run(
                self.c,
                "DELETE FROM content_links WHERE appliance_id = ? AND sha256 = ?",
                (appliance_id, sha256),
            )
