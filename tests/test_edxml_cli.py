"""`luutru edxml …` and `luutru trust …`: the contract of the issue, end to end in-process."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from luutru.cli import main
from tests.archive.conftest import pdf_bytes
from tests.conftest import ORG_ID, ORG_NAME
from tests.edxml_field import FieldAttachment, FieldDoc, field_package
from tests.pki_services import PkiServices, pki_services

__all__ = ["pki_services"]


def run(*args: str) -> Result:
    return CliRunner().invoke(main, list(args), catch_exceptions=False)


@pytest.fixture
def box(tmp_path: Path) -> Path:
    d = tmp_path / "box"
    assert run("init", "--data", str(d), "--org-id", ORG_ID, "--org-name", ORG_NAME,
               "--key", "software").exit_code == 0
    return d


def test_trust_add_list_remove(box: Path, pki_services: PkiServices, tmp_path: Path) -> None:
    empty = run("trust", "list", "--data", str(box))
    assert "trống" in empty.output
    pem = tmp_path / "root.pem"
    pem.write_bytes(pki_services.trust_roots_pem())
    added = run("trust", "add", "--data", str(box), str(pem))
    assert added.exit_code == 0 and "Test Root CA luutru" in added.output
    listed = json.loads(run("trust", "list", "--data", str(box), "--json").output)
    assert [r["subject"] for r in listed] == ["CN=Test Root CA luutru,O=Test PKI luutru,C=VN"]
    leaf = tmp_path / "leaf.pem"
    leaf.write_bytes(pki_services.identity("signer").chain_pem().split(b"-----END")[0]
                     + b"-----END CERTIFICATE-----\n")
    refused = run("trust", "add", "--data", str(box), str(leaf))
    assert refused.exit_code == 1 and "not a CA certificate" in refused.output
    gone = run("trust", "remove", "--data", str(box), listed[0]["fingerprint"][:12])
    assert gone.exit_code == 0
    assert json.loads(run("trust", "list", "--data", str(box), "--json").output) == []
    assert (box / "trust" / "README.txt").read_text("utf-8").count("luutru trust add") == 1


def test_import_prints_the_verdict_as_the_contract_says(
    box: Path, pki_services: PkiServices, tmp_path: Path
) -> None:
    pem = tmp_path / "root.pem"
    pem.write_bytes(pki_services.trust_roots_pem())
    run("trust", "add", "--data", str(box), str(pem))
    pkg = tmp_path / "cv.edxml"
    pkg.write_bytes(field_package(pki_services.identity("signer")))
    res = run("edxml", "import", "--data", str(box), str(pkg), "--json")
    assert res.exit_code == 0, res.output
    out = json.loads(res.output)
    for key in ("subject", "code_number", "code_notation", "organ_id", "organ_name",
                "verdict", "signatures"):
        assert key in out
    assert out["verdict"] == "valid" and out["organ_id"] == "000.00.00.H49"
    assert out["code_number"] == "1234" and out["organ_name"] == "Ủy ban nhân dân tỉnh Quảng Ninh"
    assert {"intact", "trusted", "signer"} <= set(out["signatures"][0])
    items = json.loads(run("edxml", "list", "--data", str(box), "--json").output)
    assert [i["status"] for i in items] == ["received"]
    reg = run("edxml", "register", "--data", str(box), items[0]["id"], "--json")
    assert reg.exit_code == 0 and json.loads(reg.output)["ArrivalNumber"] == 1
    again = run("edxml", "reverify", "--data", str(box), items[0]["id"], "--json")
    assert json.loads(again.output)["verdict"] == "valid"


def test_refused_package_exits_1_with_the_reason(box: Path, tmp_path: Path) -> None:
    pkg = tmp_path / "thieu.edxml"
    pkg.write_bytes(field_package(None, FieldDoc(manifest_extra=("Phụ lục II.pdf",)),
                                  [FieldAttachment("cv.pdf", pdf_bytes("cv"))]))
    res = CliRunner().invoke(main, ["edxml", "import", "--data", str(box), str(pkg), "--json"])
    assert res.exit_code == 1
    assert json.loads(res.output.splitlines()[0]) == {
        "refused": True,
        "reason": "Mục lục (edXMLManifest) nêu tệp 'Phụ lục II.pdf' nhưng gói tin không có "
                  "tệp đó."}


def test_return_and_export_need_what_they_need(box: Path, tmp_path: Path) -> None:
    pkg = tmp_path / "a.edxml"
    pkg.write_bytes(field_package(None, attachments=[FieldAttachment("a.pdf", pdf_bytes("a"))]))
    out = json.loads(run("edxml", "import", "--data", str(box), str(pkg), "--json").output)
    assert out["verdict"] == "unverified"
    refused = run("edxml", "register", "--data", str(box), out["id"])
    assert refused.exit_code == 1 and "xác minh" in refused.output
    ok = run("edxml", "return", "--data", str(box), out["id"], "--reason", "Thiếu chữ ký số")
    assert ok.exit_code == 0
    no_key = run("edxml", "export", "--data", str(box), "--doc", "x", "--to", "000.00.00.H49",
                 "--out", str(tmp_path / "o.edxml"))
    assert no_key.exit_code == 1 and "agency signing key" in no_key.output


def test_poll_runs_the_configured_exchange(box: Path, tmp_path: Path) -> None:
    ex = tmp_path / "lienthong"
    (box / "edxml.json").write_text(json.dumps(
        {"connector": "folder", "folder": str(ex), "online": False, "settle_s": 0}))
    (ex / "den").mkdir(parents=True)
    (ex / "den" / "a.edxml").write_bytes(field_package(
        None, attachments=[FieldAttachment("a.pdf", pdf_bytes("a"))]))
    res = run("edxml", "poll", "--data", str(box), "--json")
    out = json.loads(res.output)
    assert res.exit_code == 0 and len(out["imported"]) == 1 and len(out["sent"]) == 1
    assert len(list((ex / "di").iterdir())) == 1


def test_import_takes_an_addressees_status_message(box: Path, tmp_path: Path) -> None:
    """`edxml import` on a status message (unsigned, about nothing of ours) keeps it with its
    verdict instead of refusing it as a malformed package."""
    from tests.edxml_field import answer_status

    raw = answer_status((f"{ORG_ID},2026/01/05,12/UBND-VP", "12/UBND-VP", "2026/01/05"), "01",
                        None, "Đã đến", ("000.00.00.H49", "Ủy ban nhân dân tỉnh Quảng Ninh"),
                        "2026/01/06 08:15:00", ORG_ID)
    path = tmp_path / "trang-thai.edxml"
    path.write_bytes(raw)
    res = run("edxml", "import", "--data", str(box), str(path), "--json", "--offline")
    assert res.exit_code == 0, res.output
    out = json.loads(res.output)
    assert (out["code"], out["verdict"], out["outcome"]) == ("01", "unverified", "unknown")
    assert out["reported_at"] == "2026-01-06T08:15:00+07:00"
    text = run("edxml", "import", "--data", str(box), str(path), "--offline").output
    assert "Không kiểm tra được chữ ký — Không khớp văn bản đi nào đã gửi" in text
