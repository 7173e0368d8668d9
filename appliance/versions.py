"""A document's content versions: where each one's bytes are, so that each page is stored once.

Every version keeps its SHA-256 and provenance in the log (a document's ``Content`` list); what
varies is where its bytes live. An item of that list may say:

- ``"from": S, "extends": true`` — this file is version S followed by an incremental update
  (a PAdES signature is one). S needs no copy of its own: it is this file's first ``size``
  bytes, and anyone holding this file checks S's hash from it (the box stores S as such a
  prefix, the centre checks it on arrival, ``luutru verify`` rehashes it).
- ``"from": S`` alone (an upgraded signature from the centre, an archival PDF made from a
  scan): a different file made from S. The box may still keep S as a few differing byte
  ranges against it (``content.ContentStore.derive``); that is storage, not provenance.
- ``"keep": "none"`` — the bytes were not kept: the lossless assembly of a scan once its
  archival version (made from it) exists. Its hash stays as provenance; nothing can check it.
- ``"keep": "box"`` — kept on this box only, as a lossless master (an office's choice, off by
  default): never sent to the centre.

No ``keep`` means kept here and sent. Items never disappear from the list; a later version of
the document only adds items or sets ``keep`` on one.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from . import records, writes
from .errors import NotFoundError
from .kinds import Kind
from .results import Record
from .writer import Txn
from .writes import WriteContext

KEEP_NONE = "none"  # bytes released (provenance only)
KEEP_BOX = "box"  # a lossless master kept on this box only


@dataclass(frozen=True)
class Placement:
    """Where the bytes of each version of one document's content are."""

    own: tuple[str, ...]  # stored as files of their own, sent to the centre
    within: Mapping[str, tuple[str, int]]  # sha → (the version it is a prefix of, its size)
    released: tuple[str, ...]  # not kept anywhere (provenance only)
    box_only: tuple[str, ...]  # kept on this box only


def placement(content: Sequence[Mapping[str, Any]]) -> Placement:
    """Where each version of ``content`` (a document's Content list) is stored."""
    by_sha = {str(c["sha256"]): c for c in content}
    within: dict[str, tuple[str, int]] = {}
    for c in content:
        src = c.get("from")
        if c.get("extends") and src in by_sha:
            within[str(src)] = (str(c["sha256"]), int(by_sha[str(src)]["size"]))
    # A prefix of a prefix lives in the outermost version.
    for sha, (outer, size) in list(within.items()):
        seen = {sha}
        while outer in within and outer not in seen:
            seen.add(outer)
            outer = within[outer][0]
        within[sha] = (outer, size)
    released = tuple(s for s, c in by_sha.items() if c.get("keep") == KEEP_NONE)
    box_only = tuple(s for s, c in by_sha.items() if c.get("keep") == KEEP_BOX)
    own = tuple(
        s for s in by_sha if s not in within and s not in released and s not in box_only
    )
    return Placement(own, within, released, box_only)


def kept_items(content: Iterable[Mapping[str, Any]]) -> list[Mapping[str, Any]]:
    """The versions whose bytes exist (all but the released ones), in order."""
    return [c for c in content if c.get("keep") != KEEP_NONE]


def final_items(content: Iterable[Mapping[str, Any]]) -> list[Mapping[str, Any]]:
    """The versions no other version was made from (what a reader of the record wants: the
    signed or upgraded PDF, not each step on the way), in order."""
    items = list(content)
    sources = {c.get("from") for c in items}
    return [c for c in kept_items(items) if c["sha256"] not in sources]


def not_sent(items: Iterable[Mapping[str, Any]]) -> set[str]:
    """Hashes in ``items`` (Content lists' items) that are never sent on their own."""
    items = list(items)
    p = placement(items)
    return set(p.within) | set(p.released) | set(p.box_only)


def add_version(
    store: WriteContext,
    doc_id: str,
    item: Mapping[str, Any],
    source: str | None = None,
    *,
    extends: bool = False,
    keep_source: str | None = None,
    actor: str = "capture",
) -> Record:
    """Add content ``item`` (already stored) as a new version made from ``source``.

    ``extends``: the new file is ``source`` plus an incremental update. ``keep_source``:
    ``KEEP_NONE`` or ``KEEP_BOX`` for a source whose own bytes go (released, or kept here
    only). One log entry: the document's full new version.
    """
    if not store.content.exists(str(item["sha256"])):
        raise NotFoundError(f"content {item['sha256']} was not stored first")

    def job(txn: Txn) -> Record:
        rec = writes.current(txn, "document", id=doc_id)
        writes.check_writable(txn.conn, rec)
        versions = [dict(c) for c in rec.data.get("Content") or ()]
        if any(c["sha256"] == item["sha256"] for c in versions):
            return rec  # recorded before (a job re-run after a crash)
        new = dict(item)
        if source is not None:
            if not any(c["sha256"] == source for c in versions):
                raise NotFoundError(f"document {doc_id} holds no content {source}")
            new["from"] = source
            if extends:
                new["extends"] = True
            if keep_source is not None:
                for c in versions:
                    if c["sha256"] == source:
                        c["keep"] = keep_source
        data = records.normalise("document", dict(rec.data, Content=[*versions, new]),
                                 store.codes)
        return writes.put(txn, "document", Kind.DOCUMENT_CONTENT, actor, data, rec.id,
                          rec.version)

    return store.writer_or_fail().call(job)


def still_referenced(conn: Any, sha256: str, except_doc: str | None = None) -> bool:
    """Whether any document (other than ``except_doc``) needs ``sha256``'s own file."""
    rows = conn.execute(
        'SELECT id, "Content" FROM documents WHERE "Content" LIKE ?', (f'%"{sha256}"%',)
    ).fetchall()
    import json

    for doc_id, raw in rows:
        if doc_id == except_doc or not raw:
            continue
        content = json.loads(raw)
        if sha256 in placement(content).own:
            return True
    return False
