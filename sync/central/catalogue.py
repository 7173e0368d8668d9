"""The province's public catalogue: what is published (ONE rule), and keeping it published.

``publishable`` is the rule. A record is published only when all of these hold:

- the appliance released it: its hồ sơ was transferred to the historical archive or opened
  by the head of the agency (``archive.transfer`` / ``archive.publish``, which list the exact
  version of the hồ sơ and of each document), and the centre holds that very version (a
  later version, or one the appliance withheld as a leaf hash, is never published instead);
- it and its hồ sơ are public: chế độ sử dụng exactly 01 (a document's Mode, the hồ sơ's
  Rights; 02 sử dụng có điều kiện and 03 mật are never published) and nothing in them carries
  a classified record's fields (``appliance.classified``: the centre never receives those);
- the archive does not withhold it, nor its hồ sơ (personal data: ``withhold``);
- a document is published only with its hồ sơ, and only while it is not recalled/destroyed.

Only the public fields of a published record leave (``PUBLIC_FIELDS``): never notes, people
who made the hồ sơ, distribution or handling fields.

The ``catalogue`` table holds the published records as every route reads them (HTML, JSON,
OAI-PMH): ``refresh`` recomputes the rule for the hồ sơ a change touches and writes what
changed with a new datestamp, or a tombstone (OAI-PMH ``deleted``) for what no longer passes.
Intake calls ``on_entries`` in the batch's transaction; a purge or a fork's rollback calls
``reproject`` for the whole appliance.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from appliance import cbor
from appliance.classified import carries_classified
from appliance.identifiers import doc_code
from appliance.kinds import Kind
from appliance.ledger import Entry
from appliance.search import fts_body
from appliance.text import fold

from .catalogue_store import CatalogueInputs, CatalogueRow
from .storage import ApplianceRecord, CentreTx

PUBLIC = "01"
RELEASE_KINDS = {Kind.ARCHIVE_TRANSFER: "transfer", Kind.ARCHIVE_PUBLISH: "open"}
GONE = ("recalled", "destroyed")
# What a reader sees of a published record (Circular 05 descriptive fields).
PUBLIC_FIELDS = {
    "file": ("FileCode", "Title", "Maintenance", "Rights", "Language", "StartDate", "EndDate",
             "DocTotal", "PageTotal", "Keyword", "InforSign", "Format", "ConfidenceLevel",
             "FondCode", "FileCatalog", "FileNotation", "NumberOfPaper"),
    "document": ("TypeName", "TypeCode", "CodeNumber", "CodeNotation", "IssuedDate",
                 "OrganName", "Subject", "Language", "PageAmount", "Keyword", "InforSign",
                 "Maintenance", "Mode", "ConfidenceLevel", "Format", "DocOrdinal", "FileCode",
                 "FondCode"),
    "fonds": ("FondCode", "FondName", "ArchivesTime", "Language", "KeyGroups", "OtherTypes",
              "FondHistory", "LookupTools"),
}


@dataclass(frozen=True)
class Candidate:
    """A record as the centre knows it, with what the rule needs to judge it."""

    kind: str  # "file" | "document"
    key: str  # the mã hồ sơ, or the document's id
    data: Mapping[str, Any] | None  # the newest version the centre holds; None: never seen
    version: int | None
    released: int | None  # the version a release lists (None: not released)
    withheld: bool  # the archive withholds it (personal data)
    parent: Candidate | None = None  # a document's hồ sơ


def publishable(c: Candidate) -> bool:
    """THE publishing rule (see the module's docstring)."""
    if c.data is None or c.withheld or c.released is None or c.released < 0:
        return False
    if c.version != c.released or carries_classified(c.data):
        return False
    if c.kind == "file":
        return (c.data.get("Rights") or PUBLIC) == PUBLIC and c.parent is None
    if c.kind != "document" or c.parent is None or not publishable(c.parent):
        return False
    return c.data.get("Mode") == PUBLIC and c.data.get("Status") not in GONE


def public_fields(kind: str, data: Mapping[str, Any]) -> dict[str, Any]:
    """The fields of ``data`` a reader may see (none of a record that is not published)."""
    out = {k: data[k] for k in PUBLIC_FIELDS[kind] if data.get(k) not in (None, "")}
    if kind == "document" and data.get("FileCode") and isinstance(data.get("DocOrdinal"), int):
        out["DocCode"] = doc_code(str(data["FileCode"]), int(data["DocOrdinal"]))
    return out


def utc_stamp(iso_time: str) -> str:
    """An ISO time as the OAI-PMH datestamp: UTC, to the second, with Z."""
    t = dt.datetime.fromisoformat(iso_time).astimezone(dt.UTC)
    return t.strftime("%Y-%m-%dT%H:%M:%SZ")


# -- judging the hồ sơ a change touched ------------------------------------------------------


def _candidates(code: str, inp: CatalogueInputs) -> list[Candidate]:
    file = inp.files.get(code)
    rel = inp.releases.get(code)
    items = rel.items if rel else {}
    withheld = inp.withheld
    parent = Candidate(
        "file", code, file[1] if file else None, file[0] if file else None,
        next((v for (t, _), v in items.items() if t == "file"), None),
        ("file", code) in withheld,
    )
    out = [parent]
    for (t, doc_id), version in sorted(items.items()):
        if t != "document":
            continue
        got = inp.documents.get(doc_id)
        out.append(Candidate("document", doc_id, got[1] if got else None, got[0] if got else None,
                             version, ("document", doc_id) in withheld, parent))
    return out


def _row(app: ApplianceRecord, code: str, c: Candidate, stamp: str,
         fonds: Mapping[str, dict[str, Any]]) -> CatalogueRow:
    assert c.data is not None
    meta = public_fields(c.kind, c.data)
    hoso = c.parent.data if c.parent is not None and c.parent.data else c.data
    fond = str(hoso.get("FondCode") or c.data.get("FondCode") or app.org_id)
    doc_id = c.key if c.kind == "document" else None
    if c.kind == "file":
        title = str(c.data.get("Title") or code)
        year = c.data.get("FileCatalog")
        type_code = None
        text = " ".join(str(v) for v in meta.values())
    else:
        title = str(c.data.get("Subject") or c.data.get("TypeName") or doc_id)
        issued = str(c.data.get("IssuedDate") or "")
        year = int(issued[:4]) if issued[:4].isdigit() else None
        type_code = c.data.get("TypeCode")
        text = fts_body(meta)
    meta["_fonds"] = public_fields("fonds", fonds.get(fond, {"FondCode": fond}))
    return CatalogueRow(
        oai_id=f"hoso/{code}" if c.kind == "file" else f"tailieu/{doc_id}",
        kind=c.kind, appliance_id=app.id, org_id=app.org_id, fond_code=fond,
        file_code=code, doc_id=doc_id, year=year if isinstance(year, int) else None,
        type_code=str(type_code) if type_code else None, title=title[:1000],
        folded=fold(text), meta_json=json.dumps(meta, ensure_ascii=False, sort_keys=True),
        datestamp=stamp,
    )


def refresh(tx: CentreTx, app: ApplianceRecord, file_codes: Iterable[str], now: str) -> int:
    """Judge every record of the hồ sơ ``file_codes`` again and write what changed (new or
    changed rows, tombstones for rows that no longer pass); the number of rows written."""
    codes = sorted(set(file_codes))
    if not codes:
        return 0
    inp = tx.catalogue_inputs(app.id, codes)
    have = tx.catalogue_rows(app.id, codes)
    stamp = utc_stamp(now)
    want: dict[str, CatalogueRow] = {}
    for code in codes:
        for c in _candidates(code, inp):
            if not publishable(c):
                continue
            row = _row(app, code, c, stamp, inp.fonds)
            want[row.oai_id] = row
    out: list[CatalogueRow] = []
    for oai_id, row in want.items():
        old = have.get(oai_id)
        if old is None or old.deleted or old.meta_json != row.meta_json:
            out.append(row)
    for oai_id, old in have.items():
        if oai_id not in want and not old.deleted:
            out.append(CatalogueRow(oai_id, old.kind, old.appliance_id, old.org_id,
                                    old.fond_code, old.file_code, old.doc_id, None, None, "",
                                    "", "{}", stamp, deleted=True))
    tx.put_catalogue(out)
    return len(out)


# -- keeping the sources at intake ------------------------------------------------------------


def on_entries(tx: CentreTx, app: ApplianceRecord, entries: Sequence[Entry], now: str) -> int:
    """Project the catalogue's sources from a batch's new full entries, then refresh the hồ
    sơ they touch. Runs in the batch's transaction, after the documents were projected."""
    touched: set[str] = set()
    files: dict[str, tuple[str, str, int, str, int]] = {}
    fonds: dict[str, tuple[str, int, str, int]] = {}
    docs: list[str] = []
    for e in entries:
        data = e.data if isinstance(e.data, dict) else None
        if data is None:
            continue
        if e.type == "file" and e.id and e.version is not None and data.get("FileCode"):
            code = str(data["FileCode"])
            files[code] = (code, str(e.id), int(e.version), _dumps(data), e.index)
            touched.add(code)
        elif e.type == "fonds" and e.version is not None and data.get("FondCode"):
            code = str(data["FondCode"])
            fonds[code] = (code, int(e.version), _dumps(data), e.index)
        elif e.type == "document" and e.id:
            docs.append(str(e.id))
            if data.get("FileCode"):
                touched.add(str(data["FileCode"]))
        elif e.kind in RELEASE_KINDS and "items" in data and data.get("FileCode"):
            code = str(data["FileCode"])
            items = [("file", str(data["file"][0]), int(data["file"][1]))]
            items += [("document", str(i), int(v)) for i, v in data["items"]]
            tx.put_release(app.id, code, RELEASE_KINDS[Kind(e.kind)], items, now, e.index)
            touched.add(code)
        elif e.kind == Kind.ARCHIVE_UNPUBLISH and data.get("FileCode"):
            tx.drop_releases(app.id, str(data["FileCode"]))
            touched.add(str(data["FileCode"]))
    tx.put_cat_files(app.id, list(files.values()))
    tx.put_cat_fonds(app.id, list(fonds.values()))
    touched |= tx.release_codes_of(app.id, docs)
    if fonds:  # a fonds' name is shown with each of its records
        touched |= {r.file_code for r in tx.catalogue_rows(app.id, tx.cat_file_codes(app.id)
                                                           ).values()}
    return refresh(tx, app, touched, now)


def reproject(tx: CentreTx, app: ApplianceRecord, now: str, chunk: int = 5000) -> int:
    """Rebuild the appliance's catalogue sources from the entries the centre holds now (after
    a purge or a fork's rollback), then refresh every hồ sơ it ever published."""
    before = set(tx.cat_file_codes(app.id))
    tx.clear_catalogue_sources(app.id)
    size = app.accepted_size
    for start in range(0, size, chunk):
        rows = tx.entries(app.id, start, min(size, start + chunk))
        decoded = [Entry.from_map(cbor.loads(r.entry)) for r in rows if r.entry is not None]
        on_entries(tx, app, decoded, now)
    return refresh(tx, app, before | set(tx.cat_file_codes(app.id)), now)


def _dumps(data: Mapping[str, Any]) -> str:
    return json.dumps(data, ensure_ascii=False, sort_keys=True, default=str)


# -- the archive's own decisions ----------------------------------------------------------------


def withhold(tx: CentreTx, app: ApplianceRecord, record_type: str, key: str, reason: str,
             by: str, now: str) -> None:
    """Withhold a hồ sơ (by mã hồ sơ) or a document (by id) from publication: personal data
    the archive keeps back. Takes effect in the same transaction."""
    if record_type not in ("file", "document") or not reason.strip():
        raise ValueError("withhold a file or a document, with a reason")
    tx.set_withheld(app.id, record_type, key, reason.strip(), by, now)
    codes = [key] if record_type == "file" else sorted(tx.release_codes_of(app.id, [key]))
    refresh(tx, app, codes, now)


def release_withheld(tx: CentreTx, app: ApplianceRecord, record_type: str, key: str,
                     now: str) -> bool:
    gone = tx.clear_withheld(app.id, record_type, key)
    codes = [key] if record_type == "file" else sorted(tx.release_codes_of(app.id, [key]))
    refresh(tx, app, codes, now)
    return gone
