"""The records and protocols of the public catalogue's storage (no SQL here).

``catalogue.py`` decides what is published and keeps the ``catalogue`` table (the published
records and the tombstones of withdrawn ones); ``sql_catalogue.py`` implements these protocols
for SQLite and PostgreSQL; ``readers.py`` keeps reader accounts and their requests.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol


@dataclass(frozen=True)
class CatalogueRow:
    """A published record (or the tombstone of one withdrawn: ``deleted``, no metadata)."""

    oai_id: str  # hoso/<mã hồ sơ> or tailieu/<document id>
    kind: str  # "file" | "document"
    appliance_id: str
    org_id: str
    fond_code: str
    file_code: str
    doc_id: str | None
    year: int | None
    type_code: str | None
    title: str
    folded: str
    meta_json: str  # the public fields only (catalogue.public_fields)
    datestamp: str  # UTC, YYYY-MM-DDThh:mm:ssZ (OAI-PMH)
    deleted: bool = False
    rid: int = 0


@dataclass(frozen=True)
class Release:
    """What one appliance released of one hồ sơ: (type, id) -> version, with its basis."""

    file_code: str
    items: Mapping[tuple[str, str], int]
    bases: frozenset[str]


@dataclass(frozen=True)
class CatalogueInputs:
    """Everything the publishing rule reads for some hồ sơ of one appliance."""

    files: Mapping[str, tuple[int, dict[str, Any]]]  # mã hồ sơ -> (version, data)
    releases: Mapping[str, Release]
    documents: Mapping[str, tuple[int, dict[str, Any]]]  # document id -> (version, data)
    withheld: frozenset[tuple[str, str]]  # (record type, mã hồ sơ or document id)
    fonds: Mapping[str, dict[str, Any]]  # fond code -> data


@dataclass(frozen=True)
class SearchQuery:
    folded: str = ""
    fonds: str | None = None
    year: int | None = None
    type_code: str | None = None
    kind: str | None = None  # "file" | "document" | None: both
    limit: int = 20
    offset: int = 0


@dataclass(frozen=True)
class ReaderRecord:
    username: str
    full_name: str
    identity_no: str | None
    pw_hash: bytes
    created_at: str
    disabled: bool = False


@dataclass(frozen=True)
class ReaderRequest:
    id: str
    username: str
    oai_id: str
    form: str  # "copy" | "certified"
    purpose: str
    status: str  # pending | approved | refused
    created_at: str
    decided_by: str | None = None
    decided_at: str | None = None
    note: str | None = None
    copy_sha256: str | None = None


class CatalogueView(Protocol):
    def catalogue_inputs(self, appliance_id: str, file_codes: Sequence[str]
                         ) -> CatalogueInputs: ...

    def catalogue_rows(self, appliance_id: str, file_codes: Sequence[str]
                       ) -> dict[str, CatalogueRow]: ...

    def release_codes_of(self, appliance_id: str, record_ids: Sequence[str]) -> set[str]:
        """Mã hồ sơ whose releases list any of ``record_ids``."""
        ...

    def cat_file_codes(self, appliance_id: str) -> list[str]: ...

    def catalogue_search(self, q: SearchQuery) -> tuple[list[CatalogueRow], int | None]:
        """Published (not deleted) rows matching ``q``, newest first, and how many match in
        all when this page is the last (None: more pages follow)."""
        ...

    def catalogue_item(self, oai_id: str) -> CatalogueRow | None: ...

    def catalogue_children(self, appliance_id: str, file_code: str) -> list[CatalogueRow]: ...

    def catalogue_sets(self) -> list[tuple[str, str, int]]:
        """(fond code, fonds name, published hồ sơ) of every fonds that publishes one."""
        ...

    def catalogue_facets(self) -> tuple[list[int], list[str]]:
        """The years and TT 05 type codes of published records (for the search filters)."""
        ...

    def oai_page(self, fonds: str | None, start: str | None, until: str | None,
                 after: tuple[str, int] | None, limit: int) -> list[CatalogueRow]:
        """Rows (tombstones too) by (datestamp, rid), after the cursor ``after``."""
        ...

    def oai_earliest(self) -> str | None: ...

    def withheld_list(self) -> list[tuple[str, str, str, str, str, str]]: ...

    def reader(self, username: str) -> ReaderRecord | None: ...

    def reader_session(self, token_hash: bytes, now: str) -> str | None: ...

    def reader_requests(self, username: str | None = None, status: str | None = None
                        ) -> list[ReaderRequest]: ...

    def reader_request(self, request_id: str) -> ReaderRequest | None: ...

    def reader_copy(self, request_id: str) -> bytes | None: ...

    def document_data(self, appliance_id: str, doc_id: str) -> dict[str, Any] | None:
        """The newest version of a document the centre holds (its content hashes too)."""
        ...


class CatalogueTx(CatalogueView, Protocol):
    def put_cat_fonds(self, appliance_id: str, rows: Sequence[tuple[str, int, str, int]]
                      ) -> None: ...

    def put_cat_files(self, appliance_id: str,
                      rows: Sequence[tuple[str, str, int, str, int]]) -> None: ...

    def put_release(self, appliance_id: str, file_code: str, basis: str,
                    items: Sequence[tuple[str, str, int]], at: str, log_index: int) -> None: ...

    def drop_releases(self, appliance_id: str, file_code: str) -> None: ...

    def clear_catalogue_sources(self, appliance_id: str) -> None:
        """Empty the appliance's cat_* projections (they are rebuilt from its entries)."""
        ...

    def put_catalogue(self, rows: Sequence[CatalogueRow]) -> None:
        """Insert or replace rows by oai_id (a tombstone replaces a published row)."""
        ...

    def set_withheld(self, appliance_id: str, record_type: str, key: str, reason: str,
                     by: str, at: str) -> None: ...

    def clear_withheld(self, appliance_id: str, record_type: str, key: str) -> bool: ...

    def add_reader(self, rec: ReaderRecord) -> None: ...

    def add_reader_session(self, token_hash: bytes, username: str, expires_at: str) -> None: ...

    def end_reader_session(self, token_hash: bytes) -> None: ...

    def add_reader_request(self, req: ReaderRequest) -> None: ...

    def decide_reader_request(self, request_id: str, status: str, by: str, at: str, note: str,
                              copy_sha256: str | None, copy_pdf: bytes | None) -> None: ...
