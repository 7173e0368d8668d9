"""What a clerk and a technician see when the box stops writing (its log lost its tail) and
when its disk fills up, in Debian's Chromium: the banner on every page, reading still works,
a refused registration keeps the form and says why in Vietnamese. Screenshots at desktop
width and at 360 px are kept in var/test-artefacts/web/."""

from __future__ import annotations

import dataclasses
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from appliance.config import SpaceConfig, load_config, save_config
from appliance.datadir import init_data_dir
from tests.conftest import ORG_ID, ORG_NAME
from tests.faults import add_clerk, kill, lose_wal, register, tree_size, wait_sealed

from .server import luutru, serve
from .test_e2e_browser import ARTEFACTS, CHROMIUM, FLAGS

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(not CHROMIUM.exists(), reason="Debian's chromium is not installed"),
]
PASSWORD = "mật khẩu của văn thư số 1"
SUBJECT = "V/v báo cáo tình hình thiên tai tháng 9"


def _user(data: Path, name: str, role: str) -> None:
    done = luutru("user", "add", "--data", str(data), "--username", name, "--role", role,
                  "--password-stdin", stdin=PASSWORD + "\n")
    assert done.returncode == 0, done.stderr


def _sign_in(page: Any, url: str, name: str) -> None:
    page.goto(url + "/signin")
    page.fill("#username", name)
    page.fill("#password", PASSWORD)
    page.click("button[type=submit]")


def _shots(page: Any, name: str) -> None:
    ARTEFACTS.mkdir(parents=True, exist_ok=True)
    page.set_viewport_size({"width": 1280, "height": 900})
    page.screenshot(path=str(ARTEFACTS / f"{name}.png"), full_page=True)
    page.set_viewport_size({"width": 360, "height": 780})
    page.screenshot(path=str(ARTEFACTS / f"{name}-360.png"), full_page=True)
    for banner in page.locator(".banner, .msg").all():  # what this change adds fits
        box = banner.bounding_box()
        assert box is not None and box["x"] + box["width"] <= 361, name
    page.set_viewport_size({"width": 1280, "height": 900})


def _fill_incoming(page: Any) -> None:
    page.fill("#f-TypeName", "Công văn")
    page.fill("#f-CodeNumber", "77")
    page.fill("#f-CodeNotation", "UBND-VP")
    page.fill("#f-IssuedDate", "03092025")
    page.fill("#f-OrganName", "Sở Nội vụ")
    page.fill("#f-Subject", SUBJECT)


def test_a_halted_box_in_the_browser(data_dir: Path) -> None:
    from playwright.sync_api import expect, sync_playwright

    _user(data_dir, "vanthu", "clerk")
    _user(data_dir, "kythuat", "technician")
    token = add_clerk(data_dir, "api")
    with serve(data_dir) as srv:
        doc = register(srv, token, 2)[0]
        srv.proc.terminate()  # closed cleanly: these two are in the database file
        srv.proc.wait(15)
    with serve(data_dir) as srv:
        register(srv, token, 3, start=10)
        wait_sealed(srv, tree_size(data_dir), data_dir)
        kill(srv)
    lose_wal(data_dir)  # the last three are gone; the anchor beside the database says so
    with serve(data_dir, ready=(503,)) as srv, sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=FLAGS)
        page = browser.new_page(viewport={"width": 1280, "height": 900}, locale="vi-VN")
        _sign_in(page, srv.url, "vanthu")
        expect(page.locator("h1")).to_have_text("Trang chủ")
        banner = page.locator("#halted")
        expect(banner).to_contain_text("Máy đã ngừng ghi sổ.")
        expect(banner).to_contain_text("Hãy báo kỹ thuật viên.")
        expect(banner).not_to_contain_text("luutru restore")  # the command is the technician's
        _shots(page, "20-halted-home")
        page.goto(f"{srv.url}/documents/{doc['id']}")  # reading goes on
        expect(page.locator("#subject")).to_have_text("V/v kiểm tra số 1")
        page.goto(srv.url + "/documents/incoming/new")
        _fill_incoming(page)
        page.click("#save")
        expect(page.locator("#error")).to_contain_text("Máy đã ngừng ghi")
        expect(page.locator("#f-Subject")).to_have_value(SUBJECT)  # the form is kept
        _shots(page, "21-halted-registration-refused")
        page.click("text=Đăng xuất")
        _sign_in(page, srv.url, "kythuat")
        expect(page.locator("#halted code")).to_contain_text("--tail-from-centre")
        _shots(page, "22-halted-technician")
        browser.close()


@pytest.fixture
def small_box(tmp_path: Path) -> Iterator[Path]:
    mnt = tmp_path / "disk"
    mnt.mkdir()
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=48m", "tmpfs", str(mnt)],
                          capture_output=True, text=True)
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {done.stderr.strip()}")
    made = tmp_path / "made"
    init_data_dir(made, ORG_ID, ORG_NAME, "software")
    box = mnt / "appliance"
    shutil.copytree(made, box)
    cfg = load_config(box)
    save_config(box, dataclasses.replace(cfg, space=SpaceConfig(24, 12, 4)))
    try:
        yield box
    finally:
        subprocess.run(["umount", "-l", str(mnt)], check=False)


def test_a_full_disk_in_the_browser(small_box: Path) -> None:
    from playwright.sync_api import expect, sync_playwright

    from tests.test_diskspace import fill

    _user(small_box, "vanthu", "clerk")
    token = add_clerk(small_box, "api")
    with serve(small_box) as srv, sync_playwright() as p:
        doc = register(srv, token, 1)[0]
        browser = p.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=FLAGS)
        page = browser.new_page(viewport={"width": 1280, "height": 900}, locale="vi-VN")
        _sign_in(page, srv.url, "vanthu")
        expect(page.locator("#disk")).to_have_count(0)
        filler = fill(small_box.parent, leave=18 << 20)
        page.goto(srv.url + "/")
        expect(page.locator("#disk")).to_contain_text("Ổ đĩa sắp đầy")
        _shots(page, "23-disk-almost-full")
        fill(small_box.parent)
        page.goto(srv.url + "/")
        expect(page.locator("#disk")).to_contain_text("Ổ đĩa gần hết chỗ")
        page.goto(srv.url + "/documents/incoming/new")
        _fill_incoming(page)
        page.click("#save")
        expect(page.locator("#error")).to_contain_text("MB trống")
        expect(page.locator("#f-Subject")).to_have_value(SUBJECT)
        _shots(page, "24-disk-full-registration-refused")
        page.goto(f"{srv.url}/documents/{doc['id']}")  # reading, and its audit entry, go on
        expect(page.locator("#subject")).to_have_text("V/v kiểm tra số 1")
        filler.unlink()
        page.goto(srv.url + "/")
        expect(page.locator("#disk")).to_have_count(0)
        browser.close()
