"""Mergers: a closed fonds is read-only, numbers stop, only its backlog can still be imported."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest

from appliance.archive.fonds import close_fonds
from appliance.errors import ConflictError, ReadOnlyError
from appliance.importer import import_file
from appliance.store import Store
from tests.archive.conftest import Hoso
from tests.conftest import ORG_ID, incoming, outgoing

OLD = "000.21.07.H49"


def _old_fonds(store: Store) -> None:
    store.create_fonds({"FondCode": OLD, "FondName": "Phông UBND xã Đông Xá"})


def test_closing_closes_open_files_and_freezes_everything(
    store: Store, make_hoso: Callable[..., Hoso]
) -> None:
    """Open hồ sơ are closed with their contents; afterwards nothing of the fonds changes."""
    _old_fonds(store)
    f = store.open_file({"FondCode": OLD, "OrganId": OLD, "FileCatalog": 2025,
                         "FileNotation": "01.VP", "Title": "Tập lưu", "Maintenance": "01"})
    code = f.data["FileCode"]
    doc = store.register_incoming(incoming(FondCode=OLD, FileCode=code)).record
    draft = store.draft_outgoing(outgoing(FondCode=OLD)).record
    res = close_fonds(store, OLD, "2025-07-01", successor=ORG_ID, actor="vt")
    assert res.fonds.data["Status"] == "closed" and res.fonds.data["SuccessorFondCode"] == ORG_ID
    assert [c.record.data["FileCode"] for c in res.files_closed] == [code]
    assert store.find_one("file", FileCode=code).data["DocTotal"] == 1  # type: ignore[union-attr]
    with pytest.raises(ReadOnlyError):
        store.register_incoming(incoming(FondCode=OLD))
    with pytest.raises(ReadOnlyError):
        store.issue_outgoing(draft.id)  # numbering stopped
    with pytest.raises(ReadOnlyError):
        store.update_document(doc.id, {"Subject": "sửa"})
    with pytest.raises(ReadOnlyError):
        store.open_file({"FondCode": OLD, "OrganId": OLD, "FileCatalog": 2025,
                         "FileNotation": "02.VP", "Title": "x", "Maintenance": "01"})
    with pytest.raises(ConflictError):
        close_fonds(store, OLD, "2025-07-02")
    # the successor fonds goes on numbering
    assert store.register_incoming(incoming()).record.data["FondCode"] == ORG_ID


def test_legacy_import_takes_only_the_backlog(store: Store, tmp_path: Path) -> None:
    """Paper-era records dated before the closing may be imported; anything later is refused."""
    _old_fonds(store)
    close_fonds(store, OLD, "2025-07-01", successor=ORG_ID)
    rows = [
        {"kind": "file", "FondCode": OLD, "OrganId": OLD, "FileCatalog": 2024,
         "FileNotation": "01.VP", "Title": "Tập lưu 2024", "Maintenance": "05"},
        {"kind": "file", "FondCode": OLD, "OrganId": OLD, "FileCatalog": 2026,
         "FileNotation": "01.VP", "Title": "Tập lưu 2026", "Maintenance": "05"},
        {"kind": "incoming", "FondCode": OLD, **incoming(), "ArrivalDate": "2025-06-30",
         "ArrivalNumber": 120},
        {"kind": "incoming", "FondCode": OLD, **incoming(CodeNumber="77"),
         "ArrivalDate": "2025-07-01", "ArrivalNumber": 121},
    ]
    p = tmp_path / "backlog.jsonl"
    p.write_text("\n".join(json.dumps(r, ensure_ascii=False) for r in rows) + "\n", "utf-8")
    rep = import_file(store, p)
    assert rep.imported == 2
    assert sorted(f.line for f in rep.failed) == [2, 4]
    assert all("closed on 2025-07-01" in f.message for f in rep.failed)


def test_fonds_export_for_handover(
    store: Store, make_hoso: Callable[..., Hoso], tmp_path: Path
) -> None:
    """A closed fonds exports whole: Mục lục hồ sơ, each hồ sơ (PDF+XML), SIP_hoso for the
    permanent ones, loose documents, the seal, and a manifest that sha256sum accepts."""
    import subprocess

    from lxml import etree

    from appliance.archive.fonds import export_fonds
    from appliance.archive.validate import check_package
    from appliance.errors import LuutruError
    from tests.archive.conftest import attach_pdf

    _old_fonds(store)
    perm = store.open_file({"FondCode": OLD, "OrganId": OLD, "FileCatalog": 2025,
                            "FileNotation": "01.VP", "Title": "Hồ sơ vĩnh viễn",
                            "Maintenance": "01"})
    limited = store.open_file({"FondCode": OLD, "OrganId": OLD, "FileCatalog": 2025,
                               "FileNotation": "02.VP", "Title": "Hồ sơ 10 năm",
                               "Maintenance": "06"})
    for f, n in ((perm, "1"), (limited, "2")):
        d = store.register_incoming(incoming(FondCode=OLD, FileCode=f.data["FileCode"],
                                             CodeNumber=n)).record
        attach_pdf(store, d, f"văn bản {n}")
    loose = store.register_incoming(incoming(FondCode=OLD, CodeNumber="3")).record
    attach_pdf(store, loose, "văn bản lẻ")
    store.register_incoming(incoming(FondCode=OLD, CodeNumber="4", Mode="03"))
    close_fonds(store, OLD, "2025-07-01", successor=ORG_ID)
    out = tmp_path / "handover"
    res = export_fonds(store, OLD, out, actor="vt")
    assert (res.files, res.packages, res.loose_documents, res.excluded_classified) == (2, 1, 1, 1)
    (pkg,) = list((out / "goi-nop-luu").iterdir())
    assert check_package(pkg).ok
    phong = etree.parse(str(out / "phong.xml")).getroot()
    assert phong.find("MucLucHoSo").get("permanent") == "1"  # type: ignore[union-attr]
    assert len(list(phong.iter("HoSo"))) == 2
    assert (out / "ho-so" / perm.data["FileCode"] / f"{perm.data['FileCode']}.pdf").is_file()
    check = subprocess.run(["sha256sum", "-c", "--quiet", "manifest-sha256.txt"], cwd=out,
                           capture_output=True, text=True)
    assert check.returncode == 0, check.stdout + check.stderr
    seal = json.loads((out / "niem-phong.json").read_text())
    assert seal["tree_size"] > 0 and loose.id in seal["records"]
    with pytest.raises(LuutruError):
        export_fonds(store, OLD, out)  # never over an earlier export
