"""The wizard asks in Vietnamese for what no flag gave, and a re-run asks nothing again."""

from __future__ import annotations

from pathlib import Path

from click.testing import CliRunner

from luutru.cli import main
from tests.conftest import ORG_ID, ORG_NAME


def test_prompts_in_vietnamese_then_rerun_needs_no_answers(tmp_path: Path) -> None:
    data = tmp_path / "appliance"
    answers = "\n".join([
        ORG_ID, ORG_NAME, "07123",
        "",  # no other fonds
        "software",
        "vanthu.truong", "Nguyễn Thị Lan", "mat-khau-du-dai", "mat-khau-du-dai",
        "",  # no centre yet
    ]) + "\n"
    skip = ["--skip-check", "scanners", "--skip-check", "mdns", "--ip", "127.0.0.1"]
    res = CliRunner().invoke(main, ["provision", "--data", str(data), *skip], input=answers)
    assert "Mã định danh của cơ quan" in res.output
    assert "Mã đơn vị hành chính cấp xã năm 2025" in res.output
    assert "Mật khẩu (ít nhất 12 ký tự, không phổ biến)" in res.output
    assert "XONG" in res.output, res.output
    assert res.exit_code == 0, res.output
    again = CliRunner().invoke(main, ["provision", "--data", str(data), "--non-interactive",
                                      "--no-centre", *skip])
    assert again.exit_code == 0, again.output
    assert "Mã định danh" not in again.output
