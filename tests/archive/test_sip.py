"""SIP_hoso packages: valid for the E-ARK validator and our own checks, and fail closed."""

from __future__ import annotations

import zipfile
from collections.abc import Callable
from pathlib import Path

import cbor2
import pytest
from lxml import etree

from appliance.archive import eadfields
from appliance.archive.errors import ClassifiedError, NotPermanentError, PackageError
from appliance.archive.sip import PackageOptions, build_package
from appliance.archive.validate import check_package
from appliance.errors import ConflictError
from appliance.store import Store
from tests.archive import eark
from tests.archive.conftest import Hoso, attach_pdf
from tests.conftest import incoming


def _unzip(zip_path: Path, dest: Path) -> Path:
    with zipfile.ZipFile(zip_path) as zf:
        zf.extractall(dest)
    (folder,) = list(dest.iterdir())
    return folder


def test_package_passes_our_checks(
    store: Store, make_hoso: Callable[..., Hoso], tmp_path: Path
) -> None:
    """Tree, METS, EAD (18 fields), EAD_DOC (21 fields), checksums: all check out."""
    h = make_hoso(n=3, close=True)
    res = build_package(store, h.code, tmp_path / "out" / "1.zip", PackageOptions(actor="cvlt"))
    assert res.documents == 3 and res.content_files == 3
    check = check_package(res.path)
    assert check.ok, check.problems
    assert check.documents == 3 and check.objid == res.objid
    folder = _unzip(res.path, tmp_path / "x")
    assert folder.name == res.objid
    ead = etree.parse(str(folder / "metadata/descriptive/EAD.xml")).getroot()
    assert [c.tag for c in ead] == [f.name for f in eadfields.EAD_HOSO]
    assert ead.findtext("fileCode") == h.code and ead.findtext("maintenance") == "01"
    assert ead.findtext("startDate") is not None and "/" in ead.findtext("startDate")  # type: ignore[operator]
    docs = sorted((folder / "representations/rep1/metadata/descriptive").iterdir())
    d1 = etree.parse(str(docs[0])).getroot()
    assert [c.tag for c in d1] == [f.name for f in eadfields.EAD_DOC]
    assert d1.findtext("docCode") == f"{h.code}.0000001"
    assert (folder / f"representations/rep1/data/{h.code}.1.pdf").read_bytes()[:5] == b"%PDF-"
    mets = (folder / "METS.xml").read_text("utf-8")
    assert 'CHECKSUMTYPE="SHA-256"' in mets and "+07:00" in mets
    logged = [cbor2.loads(raw) for _, raw in store.entries()]
    pkg_entries = [e for e in logged if e["kind"] == "archive.package"]
    assert pkg_entries[-1]["data"]["zip_sha256"] == res.zip_sha256


@pytest.mark.skipif(not eark.available(), reason="eark-validator is not installed")
def test_package_passes_the_eark_validator(
    store: Store, make_hoso: Callable[..., Hoso], tmp_path: Path
) -> None:
    """The PyPI E-ARK validator: structure well formed, METS valid against CSIP schemas."""
    h = make_hoso(n=2, close=True)
    res = build_package(store, h.code, tmp_path / "p.zip")
    folder = _unzip(res.path, tmp_path / "x")
    rc, out = eark.cli(folder)
    assert rc == 0 and "StructureStatus.WellFormed" in out, out
    lib = eark.library(res.path, folder)
    assert lib["status"] == "Well Formed" and not lib["errors"], lib
    assert lib["representations"] == ["rep1"]
    assert lib["mets_errors"] == []


@pytest.mark.skipif(not eark.available(), reason="eark-validator is not installed")
def test_eark_validator_notices_a_broken_package(
    store: Store, make_hoso: Callable[..., Hoso], tmp_path: Path
) -> None:
    """The validator is not a rubber stamp: a package without its root METS is rejected."""
    h = make_hoso(n=1, close=True)
    res = build_package(store, h.code, tmp_path / "p.zip")
    folder = _unzip(res.path, tmp_path / "x")
    (folder / "METS.xml").unlink()
    _rc, out = eark.cli(folder)  # the CLI exits 0 either way: read its verdict
    assert "NotWellFormed" in out and "CSIPSTR4" in out


def _rezip(folder: Path, out: Path) -> Path:
    with zipfile.ZipFile(out, "w") as zf:
        for p in sorted(folder.rglob("*")):
            if p.is_file():
                zf.write(p, str(p.relative_to(folder.parent)))
    return out


@pytest.mark.parametrize("damage", ["flip", "orphan", "missing", "ead", "mets"])
def test_our_checks_fail_closed(
    store: Store, make_hoso: Callable[..., Hoso], tmp_path: Path, damage: str
) -> None:
    """A flipped byte, an orphan, a missing file, an invalid EAD or METS are each named."""
    h = make_hoso(n=2, close=True)
    res = build_package(store, h.code, tmp_path / "p.zip")
    folder = _unzip(res.path, tmp_path / "x")
    data = folder / "representations/rep1/data" / f"{h.code}.1.pdf"
    if damage == "flip":
        b = bytearray(data.read_bytes())
        b[100] ^= 0x01
        data.write_bytes(bytes(b))
        want = "CHECKSUM does not match"
    elif damage == "orphan":
        (folder / "representations/rep1/data/extra.pdf").write_bytes(b"%PDF-1.4")
        want = "orphan"
    elif damage == "missing":
        data.unlink()
        want = "referenced but missing"
    elif damage == "ead":
        p = folder / "metadata/descriptive/EAD.xml"
        p.write_text(p.read_text("utf-8").replace("<maintenance>01<", "<maintenance>9<"), "utf-8")
        want = "EAD.xml: line"
    else:
        p = folder / "METS.xml"
        p.write_text(p.read_text("utf-8").replace("<metsHdr ", "<metsHeader "), "utf-8")
        want = "METS.xml"
    check = check_package(_rezip(folder, tmp_path / "bad.zip"))
    assert not check.ok
    assert any(want in problem for problem in check.problems), check.problems


def test_only_permanent_closed_files(
    store: Store, make_hoso: Callable[..., Hoso], tmp_path: Path
) -> None:
    """Maintenance other than 01 and open files are refused; nothing is written."""
    out = tmp_path / "out"
    out.mkdir()
    limited = make_hoso(n=1, maintenance="05", close=True)
    with pytest.raises(NotPermanentError):
        build_package(store, limited.code, out / "a.zip")
    still_open = make_hoso(n=1, close=False)
    with pytest.raises(ConflictError):
        build_package(store, still_open.code, out / "b.zip")
    assert list(out.iterdir()) == []


def test_classified_kept_off(
    store: Store, make_hoso: Callable[..., Hoso], tmp_path: Path
) -> None:
    """Mật documents are left out (and counted); a mật file is refused unless included."""
    h = make_hoso(n=2, close=False)
    secret = store.register_incoming(incoming(FileCode=h.code, CodeNumber="999", Mode="03"))
    attach_pdf(store, secret.record, "tài liệu mật")
    store.close_file(h.code)
    res = build_package(store, h.code, tmp_path / "p.zip")
    assert res.documents == 2 and res.excluded_classified == 1
    assert check_package(res.path).ok
    with zipfile.ZipFile(res.path) as zf:
        assert not any("999" in n or "mật" in n for n in zf.namelist())
    m = make_hoso(n=1, close=True, Rights="03")
    with pytest.raises(ClassifiedError):
        build_package(store, m.code, tmp_path / "m.zip")


def test_rotted_content_stops_the_package(
    store: Store, make_hoso: Callable[..., Hoso], tmp_path: Path
) -> None:
    """A content file that no longer matches its SHA-256 never travels."""
    h = make_hoso(n=2, close=True)
    path = store.content.path(h.docs[1].data["Content"][0]["sha256"])
    path.chmod(0o644)
    b = bytearray(path.read_bytes())
    b[-10] ^= 0xFF
    path.write_bytes(bytes(b))
    out = tmp_path / "out"
    with pytest.raises(PackageError, match="corrupt"):
        build_package(store, h.code, out / "p.zip")
    assert list(out.iterdir()) == []


def test_shipped_schemas_match_the_field_tables(tmp_path: Path) -> None:
    """The ead*.xsd in schemas/ are exactly what the field tables generate."""
    eadfields.write_schemas(tmp_path)
    for name in eadfields.SCHEMAS:
        assert (tmp_path / name).read_text() == (eadfields.SCHEMA_DIR / name).read_text(), name
