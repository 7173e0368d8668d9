"""The whole provisioning run, non-interactively, against swtpm and a real centre process."""

from __future__ import annotations

import json
import sqlite3
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from appliance.config import DB_NAME, load_config
from appliance.ledger import Entry, iter_entries
from appliance.verify import verify_data_dir
from luutru.provision.attest import verify_evidence
from luutru.provision.wizard import EVIDENCE_NAME, SHEET_NAME
from tests.conftest import ORG_ID, ORG_NAME
from tests.swtpm import Swtpm

REPO = Path(__file__).resolve().parents[2]
LUUTRU = [sys.executable, "-m", "luutru"]
PASSWORD = "mat-khau-rat-dai-2025"


def provision(data: Path, *args: str, password: str | None = PASSWORD,
              check: bool = True) -> tuple[int, dict[str, Any], str]:
    extra = ["--admin-password-stdin"] if password is not None else []
    p = subprocess.run(
        [*LUUTRU, "provision", "--data", str(data), "--non-interactive", "--json", *extra,
         *args],
        input=(password or "") + "\n", capture_output=True, text=True, cwd=REPO, timeout=300,
    )
    report = json.loads(p.stdout.strip().splitlines()[-1]) if p.stdout.strip() else {}
    return p.returncode, report, p.stderr


def _identity_args() -> list[str]:
    return ["--org-id", ORG_ID, "--org-name", ORG_NAME, "--unit-code", "07123",
            "--fonds", "000.21.07.H49|Phông UBND xã Đông Hải cũ|closed|30/06/2025",
            "--ip", "127.0.0.1", "--admin-username", "lanhdao",
            "--admin-full-name", "Trần Văn Hùng"]


def _selftest_args(sane_dir: Path) -> list[str]:
    return ["--sane-config-dir", str(sane_dir), "--scan-interface", "127.0.0.1",
            "--mdns-interface", "127.0.0.1"]


def _steps(report: dict[str, Any]) -> dict[str, str]:
    return {s["name"]: s["status"] for s in report["steps"]}


def _checks(report: dict[str, Any]) -> dict[str, str]:
    return {c["name"]: c["status"] for c in report["self_test"]}


def _kinds(data: Path) -> list[str]:
    conn = sqlite3.connect(data / DB_NAME)
    try:
        return [Entry.decode(raw).kind for _, raw in iter_entries(conn)]
    finally:
        conn.close()


def _pdf_text(path: Path) -> str:
    return subprocess.run(["pdftotext", "-layout", str(path), "-"], capture_output=True,
                          text=True, check=True).stdout


@pytest.mark.slow
def test_full_provisioning_against_swtpm_and_a_real_centre(
    tmp_path: Path, swtpm: Swtpm, sane_dir: Path, centre: Any
) -> None:
    """Identity, TPM key, TLS, admin, TPM quote, enrolment, self-test, sheet — then the log
    verifies, the centre knows the appliance, and the first batch carries the evidence."""
    from tests.sync.procs import report as centre_report
    from tests.sync.procs import row, run_json, token

    data = tmp_path / "appliance"
    tok = token(centre.data)
    code, report, err = provision(
        data, *_identity_args(), "--key", "tpm", "--tcti", swtpm.tcti,
        "--centre", centre.url, "--token", tok, *_selftest_args(sane_dir))
    assert code == 0, (report, err)
    assert _steps(report) == {
        "device-key": "done", "identity": "done", "tls": "done", "admin": "done",
        "boot-evidence": "done", "enrol": "done", "sheet": "done"}
    assert _checks(report) == {"tpm": "pass", "disk": "pass", "clock": "pass",
                               "scanners": "pass", "centre": "pass", "mdns": "pass"}
    config = load_config(data)
    assert config.key.backing.value == "tpm"

    # The boot evidence is a real quote by this TPM over PCR 0–7, bound to the device key.
    ev = json.loads((data / EVIDENCE_NAME).read_text())
    pem = (data / "keys" / "device.pub.pem").read_text()
    assert verify_evidence(ev, pem).pcrs == {i: bytes(32) for i in range(8)}  # swtpm: zeros
    kinds = _kinds(data)
    assert "provision.identity" in kinds and "provision.boot_evidence" in kinds
    assert kinds.count("fonds.close") == 1
    assert verify_data_dir(data).ok

    # The administrator exists in the web UI's user table (never in the log with a hash).
    conn = sqlite3.connect(data / DB_NAME)
    assert conn.execute("SELECT role FROM web_users WHERE username = 'lanhdao'").fetchone() == (
        "leader",)
    conn.close()

    # The centre has the appliance, and takes its first batch (the evidence with it).
    assert row(centre_report(centre.data))["org_id"] == ORG_ID
    sync = run_json("sync", "--data", str(data), "--once", "--json", "--ignore-window")
    assert sync, sync
    accepted = row(centre_report(centre.data))["accepted_size"]
    assert accepted >= kinds.index("provision.boot_evidence") + 1

    # The sheet, in Vietnamese, with the URL, the fingerprint and the results.
    text = _pdf_text(data / SHEET_NAME)
    tls = next(s for s in report["steps"] if s["name"] == "tls")["detail"]
    assert "PHIẾU CÀI ĐẶT THIẾT BỊ LƯU TRỮ" in text
    assert "https://ubnd-xa-dong-hai.local/" in text
    assert tls["fingerprint_sha256"][:23] in text  # the first 8 bytes, as printed
    assert "Mã đơn vị hành chính" in text and "07123" in text
    assert "ĐẠT" in text and "KHÔNG ĐẠT" not in text
    assert PASSWORD not in text

    # Re-running changes nothing that was done: same key, same certificate, no new entries.
    before = _kinds(data)
    code, again, err = provision(data, "--admin-username", "lanhdao", *_selftest_args(sane_dir),
                                 "--centre", centre.url, password=None)
    assert code == 0, (again, err)
    assert _steps(again) == {
        "device-key": "kept", "identity": "kept", "tls": "kept", "admin": "kept",
        "boot-evidence": "kept", "enrol": "kept", "sheet": "done"}
    assert _kinds(data) == before


def test_unreachable_centre_is_reported_and_the_sheet_says_so(
    tmp_path: Path, sane_dir: Path
) -> None:
    """No centre listens on the port: enrolment fails, the self-test says unreachable, exit 1,
    and everything else is done and printed."""
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        dead = f"http://127.0.0.1:{s.getsockname()[1]}"  # bound, never listening
        data = tmp_path / "appliance"
        code, report, err = provision(
            data, *_identity_args(), "--key", "software", "--centre", dead,
            "--token", "lt1.AAAAAAAAAAAAAAAAAAAAAAAAAAA.0011223344556677",
            *_selftest_args(sane_dir))
    assert code == 1, (report, err)
    steps = _steps(report)
    assert steps["enrol"] == "failed" and steps["boot-evidence"] == "skipped"
    assert steps["admin"] == "done" and steps["sheet"] == "done"
    checks = {c["name"]: c for c in report["self_test"]}
    assert checks["centre"]["status"] == "fail"
    assert "cannot be reached" in checks["centre"]["reason"]
    assert checks["tpm"]["status"] == "skipped"
    text = _pdf_text(data / SHEET_NAME)
    assert "KHÔNG ĐẠT" in text and "CHƯA đăng ký" in text and "KHÓA PHẦN MỀM" in text


def test_a_folder_of_another_commune_is_never_touched(tmp_path: Path) -> None:
    from appliance.datadir import init_data_dir

    data = tmp_path / "appliance"
    init_data_dir(data, "000.21.09.H49", "Ủy ban nhân dân xã Khác", "software")
    before = (data / "appliance.json").read_bytes(), (data / DB_NAME).stat().st_size
    code, _, err = provision(data, *_identity_args(), "--no-centre",
                             "--skip-check", "scanners", "--skip-check", "mdns")
    assert code == 1 and "already belongs to 000.21.09.H49" in err
    assert ((data / "appliance.json").read_bytes(), (data / DB_NAME).stat().st_size) == before


def test_a_non_empty_foreign_folder_is_refused(tmp_path: Path) -> None:
    data = tmp_path / "appliance"
    data.mkdir()
    (data / "notes.txt").write_text("giữ lại")
    code, _, err = provision(data, *_identity_args(), "--no-centre")
    assert code == 1 and "not empty" in err
    assert (data / "notes.txt").read_text() == "giữ lại"
    assert sorted(p.name for p in data.iterdir()) == ["notes.txt"]


@pytest.mark.parametrize(("flag", "value", "message"), [
    ("--unit-code", "1234", "5 digits"),
    ("--org-id", "H49", "000.00.00.H49"),
    ("--fonds", "000.21.07.H49|Phông cũ|closed", "closing date"),
])
def test_bad_answers_are_refused_before_anything_is_written(
    tmp_path: Path, flag: str, value: str, message: str
) -> None:
    data = tmp_path / "appliance"
    args = _identity_args()
    if flag in args:
        args[args.index(flag) + 1] = value
    else:
        args += [flag, value]
    code, _, err = provision(data, *args, "--no-centre")
    assert code == 2 and message in err, err
    assert not data.exists()
