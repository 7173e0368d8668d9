"""SIP_hoso packages: valid for the E-ARK validator and our own checks, and fail closed."""

from __future__ import annotations

import hashlib
import zipfile
from collections.abc import Callable
from pathlib import Path

import cbor2
import pytest
from lxml import etree

from appliance.archive import eadfields, fixity, premis
from appliance.archive.errors import ClassifiedError, NotPermanentError, PackageError
from appliance.archive.sip import PackageOptions, build_package
from appliance.archive.validate import check_package
from appliance.errors import ConflictError
from appliance.store import Store
from tests.archive import eark
from tests.archive.conftest import Hoso, attach_pdf, pdf_bytes
from tests.conftest import ORG_ID, ORG_NAME, incoming


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


NEEDS_EARK = pytest.mark.skipif(
    not eark.available(), reason="the E-ARK validator (.venv-eark, scripts/bootstrap.sh) is missing"
)


def _capture_like(store: Store, h: Hoso) -> list[str]:
    """Give the first document the three versions capture makes: the scan, its OCR'd PDF/A
    (made from the scan) and the signed PDF/A (made from the OCR'd one)."""
    doc = h.docs[0]
    raw = doc.data["Content"][0]
    shas = [raw["sha256"]]
    for name, rendition in (("x.ocr.pdf", "ocr"), ("x.pdf", "signed")):
        stored = store.content.put_bytes(pdf_bytes(f"{name} của văn bản 1"))
        store.attach_content(doc.id, [{"sha256": stored.sha256, "size": stored.size,
                                       "name": name, "mime": "application/pdf",
                                       "from": shas[-1], "rendition": rendition}])
        shas.append(stored.sha256)
    return shas


@NEEDS_EARK
def test_package_passes_the_eark_validator(
    store: Store, make_hoso: Callable[..., Hoso], tmp_path: Path
) -> None:
    """eark-validator 1.1.3 (-r -c, CSIP/SIP V2.1.0, schematron): well formed, METS schema
    valid, no warning, and no error but the validator's own SIP14 contradiction."""
    assert eark.installed_version() == eark.VERSION
    h = make_hoso(n=3, close=False)
    _capture_like(store, h)
    store.close_file(h.code)
    fixity.audit(store)
    res = build_package(store, h.code, tmp_path / "p.zip")
    folder = _unzip(res.path, tmp_path / "x")
    rep = eark.run(folder)
    assert rep.structure == "WellFormed", rep.summary()
    assert rep.schema == "VALID", rep.summary()
    assert rep.unexpected_errors() == [], rep.summary()
    assert rep.warnings == [], rep.summary()
    assert [e["rule_id"] for e in rep.errors] == ["SIP14"]  # the one known false positive


@NEEDS_EARK
def test_sip14_cannot_be_met_by_a_schema_valid_mets(
    store: Store, make_hoso: Callable[..., Hoso], tmp_path: Path
) -> None:
    """Why one SIP14 stays: typing the software agent's note as the rule's XPath asks
    (un-namespaced NOTETYPE) makes the METS invalid against its schema, and dropping the note
    breaks CSIP15/CSIP16. No METS can satisfy eark-validator 1.1.3 there."""
    h = make_hoso(n=1, close=True)
    folder = _unzip(build_package(store, h.code, tmp_path / "p.zip").path, tmp_path / "x")
    mets = folder / "METS.xml"
    text = mets.read_text("utf-8")
    note = '<note csip:NOTETYPE="SOFTWARE VERSION">'
    assert text.count(note) == 1
    mets.write_text(text.replace(note, note[:-1] + ' NOTETYPE="IDENTIFICATIONCODE">'), "utf-8")
    typed = eark.run(folder)
    assert "SIP14" not in [e["rule_id"] for e in typed.errors]
    assert typed.schema == "INVALID"
    start = text.index(note)
    mets.write_text(text[:start] + text[text.index("</note>", start) + 7:], "utf-8")
    bare = eark.run(folder)
    assert {"CSIP15", "CSIP16"} <= {e["rule_id"] for e in bare.errors}


@NEEDS_EARK
@pytest.mark.parametrize("damage", ["no-mets", "no-documentation", "profile"])
def test_eark_validator_notices_a_broken_package(
    store: Store, make_hoso: Callable[..., Hoso], tmp_path: Path, damage: str
) -> None:
    """The validator is not a rubber stamp: no root METS, no Documentation group, or the CSIP
    profile URL in PROFILE (as the circular's sample has it) are each an error."""
    h = make_hoso(n=1, close=True)
    res = build_package(store, h.code, tmp_path / "p.zip")
    folder = _unzip(res.path, tmp_path / "x")
    mets = folder / "METS.xml"
    if damage == "no-mets":
        mets.unlink()
        rep = eark.run(folder)
        assert rep.structure == "NotWellFormed"
        assert "CSIPSTR4" in [e["rule_id"] for e in rep.errors]
        return
    text = mets.read_text("utf-8")
    if damage == "no-documentation":
        text = text.replace('USE="Documentation"', 'USE="Notes"')
        want = "CSIP60"
    else:
        text = text.replace("earksip.dilcis.eu/profile/E-ARK-SIP.xml",
                            "earkcsip.dilcis.eu/profile/E-ARK-CSIP.xml")
        want = "SIP2"
    mets.write_text(text, "utf-8")
    assert want in [e["rule_id"] for e in eark.run(folder).unexpected_errors()]


def test_only_the_archival_version_travels_with_the_earlier_ones_in_premis(
    store: Store, make_hoso: Callable[..., Hoso], tmp_path: Path
) -> None:
    """Scan → OCR'd → signed: only the signed file is in data/; PREMIS (valid against the
    PREMIS 3 schema) describes all three, each derived from the one before, with their
    capture, OCR and signature events, the fixity check and this package's creation."""
    h = make_hoso(n=2, close=False)
    scan, ocr, signed = _capture_like(store, h)
    store.close_file(h.code)
    fixity.audit(store)
    res = build_package(store, h.code, tmp_path / "p.zip")
    assert res.content_files == 2
    folder = _unzip(res.path, tmp_path / "x")
    data = sorted(p.name for p in (folder / "representations/rep1/data").iterdir())
    assert data == [f"{h.code}.1.pdf", f"{h.code}.2.pdf"]
    first = (folder / f"representations/rep1/data/{h.code}.1.pdf").read_bytes()
    assert hashlib.sha256(first).hexdigest() == signed
    prem = (folder / "representations/rep1/metadata/preservation/PREMIS_rep1.xml").read_bytes()
    assert premis.validate(prem) == []
    assert premis.validate((folder / "metadata/preservation/PREMIS.xml").read_bytes()) == []
    root = etree.fromstring(prem)
    ns = {"p": premis.PREMIS_NS}
    derived = {
        o.findtext("p:objectIdentifier/p:objectIdentifierValue", namespaces=ns):
        o.findtext("p:relationship/p:relatedObjectIdentifier/p:relatedObjectIdentifierValue",
                   namespaces=ns)
        for o in root.findall("p:object", ns)
    }
    assert derived[ocr] == scan and derived[signed] == ocr and derived[scan] is None
    where = root.xpath("//p:object[p:objectIdentifier/p:objectIdentifierValue=$s]"
                       "/p:storage/p:contentLocation/p:contentLocationValue/text()",
                       namespaces=ns, s=signed)
    assert where == [f"data/{h.code}.1.pdf"]
    assert not root.xpath("//p:object[p:objectIdentifier/p:objectIdentifierValue=$s]"
                          "/p:storage", namespaces=ns, s=scan)
    types = [e.text for e in root.iterfind("p:event/p:eventType", ns)]
    for want in ("capture", "ingestion", "optical character recognition",
                 "digital signature generation", "fixity check",
                 "information package creation"):
        assert want in types, types
    assert check_package(res.path).ok


def test_the_creator_agent_is_the_fonds_and_its_code(
    store: Store, make_hoso: Callable[..., Hoso], tmp_path: Path
) -> None:
    """A hồ sơ of a merged commune's fonds: the archival creator is that commune with its mã
    phông; the submitter is the box's agency with its mã định danh."""
    store.create_fonds({"FondCode": "000.31.08.H49", "FondName": "Phông Ủy ban nhân dân xã An Hòa"})
    h = make_hoso(n=1, close=True, FondCode="000.31.08.H49", OrganId="000.31.08.H49")
    assert h.file.data["FondCode"] == "000.31.08.H49"
    folder = _unzip(build_package(store, h.code, tmp_path / "p.zip").path, tmp_path / "x")
    ns = {"m": "http://www.loc.gov/METS/"}
    root = etree.parse(str(folder / "METS.xml")).getroot()
    agents = {(a.get("ROLE"), a.get("OTHERROLE")): (a.findtext("m:name", namespaces=ns),
                                                     a.findtext("m:note", namespaces=ns))
              for a in root.iterfind("m:metsHdr/m:agent", ns)}
    assert agents[("ARCHIVIST", None)] == ("Ủy ban nhân dân xã An Hòa", "000.31.08.H49")
    assert agents[("OTHER", "SUBMITTER")] == (ORG_NAME, ORG_ID)
    assert agents[("CREATOR", None)][0] == "luutru"


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


def test_the_contents_list_never_runs_what_other_agencies_wrote() -> None:
    """The mục lục văn bản CSV opens in office software: a subject or author that looks like a
    formula stays text (appliance/cells.py)."""
    import csv
    import io

    from appliance.archive.closing import ContentsItem
    from appliance.archive.sip import contents_csv

    item = ContentsItem(1, "d1", 1, "incoming", "registered", "Công văn", "12", "UBND",
                        "2025-09-03", '=HYPERLINK("http://evil.example/","Xem")',
                        "+cmd|' /C calc'!A0", 2, "01", False, (), False)
    rows = list(csv.reader(io.StringIO(contents_csv(
        {"FileCode": "H49.2025.01", "Title": "@SUM(A1)"}, [item]).decode("utf-8-sig"))))
    assert rows[0][3] == "'@SUM(A1)"
    assert rows[2][3] == '\'=HYPERLINK("http://evil.example/","Xem")'
    assert rows[2][4] == "Công văn: +cmd|' /C calc'!A0" and rows[2][2] == "03/09/2025"
