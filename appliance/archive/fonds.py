"""Commune mergers (2025): closing a fonds with its open hồ sơ, and handing a fonds over whole."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .. import classified, writes
from ..clock import iso, parse_date
from ..fonds import mark_closed, open_fonds
from ..kinds import Kind
from ..store import Record
from ..versions import kept_items
from ..writer import Txn
from .closing import CloseResult, close_in_txn
from .medium import copy_verified

if TYPE_CHECKING:
    from ..store import Store


@dataclass(frozen=True)
class FondsClosed:
    fonds: Record
    files_closed: tuple[CloseResult, ...]


def close_fonds(
    store: Store,
    fond_code: str,
    closed_date: str,
    successor: str | None = None,
    actor: str = "system",
) -> FondsClosed:
    """Close every open hồ sơ of the fonds (contents, counts), then the fonds, in one commit.

    After this the fonds' records are read-only and its numbering stops (Store checks the
    fonds status on every write); a closed fonds can still be exported whole for hand-over.
    """
    when = parse_date(closed_date, "ClosedDate").isoformat()

    def job(txn: Txn) -> FondsClosed:
        rec = open_fonds(txn, fond_code)
        if successor:
            writes.current(txn, "fonds", FondCode=successor)
        open_files = [
            str(r[0])
            for r in txn.conn.execute(
                'SELECT "FileCode" FROM files WHERE "FondCode" = ? AND "Status" = \'open\' '
                "ORDER BY rid",
                (fond_code,),
            )
        ]
        closed = tuple(
            close_in_txn(store, txn, code, actor, reason="đóng phông") for code in open_files
        )
        return FondsClosed(mark_closed(txn, rec, when, successor, actor), closed)

    return store.writer_or_fail().call(job)


@dataclass
class FondsExport:
    out_dir: Path
    fond_code: str
    files: int = 0
    packages: int = 0
    loose_documents: int = 0
    excluded_classified: int = 0
    warnings: list[str] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return {
            "out_dir": str(self.out_dir),
            "fond_code": self.fond_code,
            "files": self.files,
            "packages": self.packages,
            "loose_documents": self.loose_documents,
            "excluded_classified": self.excluded_classified,
            "warnings": self.warnings,
        }


def _fonds_xml(fonds: dict[str, Any], files: list[dict[str, Any]], created: str) -> bytes:
    from lxml import etree

    root = etree.Element("Phong")
    root.set("created", created)
    for k, v in fonds.items():
        etree.SubElement(root, k).text = str(v)
    ml = etree.SubElement(root, "MucLucHoSo")
    permanent = sum(1 for f in files if f.get("Maintenance") == "01")
    ml.set("total", str(len(files)))
    ml.set("permanent", str(permanent))
    ml.set("limited", str(len(files) - permanent))
    for f in files:
        el = etree.SubElement(ml, "HoSo")
        for k in ("FileCode", "Title", "Maintenance", "StartDate", "EndDate", "DocTotal",
                  "PageTotal", "Creator", "Status"):
            if f.get(k) is not None:
                etree.SubElement(el, k).text = str(f[k])
    return bytes(etree.tostring(root, xml_declaration=True, encoding="UTF-8", pretty_print=True))


def _loose_xml(store: Store, docs: list[Record], out: Path) -> bytes:
    from lxml import etree

    from .sip import EXTENSIONS

    root = etree.Element("VanBanLe")
    for d in docs:
        el = etree.SubElement(root, "VanBan")
        el.set("id", d.id)
        for k, v in d.data.items():
            if k == "Content":
                for c in kept_items(v):  # a released lossless scan has no bytes to copy
                    name = f"{c['sha256']}.{EXTENSIONS.get(str(c.get('mime')), 'bin')}"
                    with store.content.open(c["sha256"]) as src:
                        copy_verified(src, out / "van-ban-le" / name, c["sha256"],
                                      out / ".tmp")
                    cf = etree.SubElement(el, "ContentFile")
                    cf.set("sha256", c["sha256"])
                    cf.text = f"van-ban-le/{name}"
            elif not isinstance(v, (list, dict)):
                etree.SubElement(el, k).text = str(v)
    return bytes(etree.tostring(root, xml_declaration=True, encoding="UTF-8", pretty_print=True))


def export_fonds(
    store: Store,
    fond_code: str,
    out_dir: Path,
    *,
    include_classified: bool = False,
    actor: str = "system",
) -> FondsExport:
    """Hand a fonds over whole (TT 06/2025 Điều 39–40): Mục lục hồ sơ, every hồ sơ as a
    Decree 30 export, SIP_hoso for permanent closed ones, loose documents, the seal and a
    SHA-256 manifest; classified records stay out unless included."""
    import shutil

    from ..fsutil import write_atomic
    from .errors import ArchiveError
    from .export import export_file
    from .sip import PackageOptions, build_package

    fonds = store.find_one("fonds", FondCode=fond_code)
    if fonds is None:
        raise ArchiveError(f"no fonds {fond_code}")
    if out_dir.exists() and any(out_dir.iterdir()):
        raise ArchiveError(f"{out_dir} is not empty; export into a new folder")
    out_dir.mkdir(parents=True, exist_ok=True)
    res = FondsExport(out_dir, fond_code)
    files = [r.data for r in store.find("file", FondCode=fond_code)]
    listed = []
    for f in files:
        code = str(f["FileCode"])
        if classified.is_classified(f) and not include_classified:
            res.excluded_classified += 1
            continue
        listed.append(f)
        ex = export_file(store, code, out_dir / "ho-so" / code,
                         include_classified=include_classified, actor=actor)
        res.excluded_classified += ex.excluded_classified
        res.files += 1
        if f.get("Maintenance") == "01" and f.get("Status") == "closed":
            if not ex.documents:
                res.warnings.append(f"hồ sơ {code} không có văn bản: không lập gói nộp lưu")
                continue
            build_package(store, code, out_dir / "goi-nop-luu" / f"{code}.zip",
                          PackageOptions(include_classified=include_classified, actor=actor))
            res.packages += 1
        elif f.get("Maintenance") == "01":
            res.warnings.append(f"hồ sơ {code} chưa đóng: chưa lập gói nộp lưu")
    loose = [d for d in store.find("document", FondCode=fond_code) if not d.data.get("FileCode")]
    if not include_classified:
        res.excluded_classified += sum(1 for d in loose if classified.is_classified(d.data))
        loose = [d for d in loose if not classified.is_classified(d.data)]
    res.loose_documents = len(loose)
    created = iso(store.clock.now())
    write_atomic(out_dir / "phong.xml", _fonds_xml(fonds.data, listed, created))
    write_atomic(out_dir / "van-ban-le.xml", _loose_xml(store, loose, out_dir))
    shutil.rmtree(out_dir / ".tmp", ignore_errors=True)
    _write_seal(store, fond_code, out_dir, include_classified)
    _write_manifest(out_dir)

    def job(txn: Txn) -> None:
        writes.append_event(txn, Kind.ARCHIVE_FONDS_EXPORT, actor,
                           {**res.to_json(), "out_dir": str(out_dir)}, "fonds", fonds.id)

    store.writer_or_fail().call(job)
    return res


def _write_seal(store: Store, fond_code: str, out_dir: Path, include_classified: bool) -> None:
    """niem-phong.json: the newest checkpoint, the device's public key and the log index of
    each record handed over, so that the receiver can check them against the sealed log."""
    import base64

    from ..datadir import PUBLIC_KEY_NAME
    from ..fsutil import write_atomic

    cp = store.latest_checkpoint()
    secret = classified.load(store.reader())
    seal = {
        "origin": store.config.origin,
        "tree_size": cp[0] if cp else 0,
        "root_hash": cp[1].hex() if cp else "",
        "checkpoint_cose_base64": base64.b64encode(cp[3]).decode() if cp else "",
        "public_key_pem": (store.data_dir / PUBLIC_KEY_NAME).read_text(),
        "records": {r.id: r.log_index for t in ("fonds", "file", "document")
                    for r in store.find(t, FondCode=fond_code)
                    if include_classified or r.id not in secret.ids},
    }
    write_atomic(out_dir / "niem-phong.json",
                 json.dumps(seal, ensure_ascii=False, indent=1).encode())


def _write_manifest(out_dir: Path) -> None:
    """manifest-sha256.txt over every file of the hand-over (sha256sum -c reads it)."""
    import hashlib

    from ..fsutil import write_atomic

    lines = []
    for p in sorted(out_dir.rglob("*")):
        if p.is_file():
            with p.open("rb") as fh:
                lines.append(f"{hashlib.file_digest(fh, 'sha256').hexdigest()}  "
                             f"{p.relative_to(out_dir)}")
    write_atomic(out_dir / "manifest-sha256.txt", ("\n".join(lines) + "\n").encode())
