"""The dashboard in Debian's Chromium under its Content-Security-Policy: styled, signs in,
searches and signs out, and the browser reports no CSP violation."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.sync.procs import DASH_PASSWORD, DASH_USER, CentreServer, run
from tests.web.test_e2e_browser import CHROMIUM, FLAGS
from web_ui.central.auth import DashboardUsers


@pytest.mark.slow
@pytest.mark.skipif(not CHROMIUM.exists(), reason="Debian's chromium is not installed")
def test_dashboard_works_in_a_browser_under_its_csp(tmp_path: Path) -> None:
    from playwright.sync_api import expect, sync_playwright

    d = tmp_path / "centre"
    run("central", "init", "--data", str(d))
    DashboardUsers(d).set_password(DASH_USER, DASH_PASSWORD)
    console: list[str] = []
    with CentreServer(d) as c, sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=FLAGS)
        page = browser.new_page(locale="vi-VN")
        page.on("console", lambda msg: console.append(msg.text))
        page.goto(c.url + "/")
        expect(page.locator("h1")).to_have_text("Đăng nhập bảng điều khiển")
        bg = page.evaluate("getComputedStyle(document.querySelector('header')).backgroundColor")
        assert bg == "rgb(139, 29, 29)"  # the stylesheet applied
        page.fill("input[name=username]", DASH_USER)
        page.fill("input[name=password]", DASH_PASSWORD)
        page.click("button[type=submit]")
        expect(page.locator("header nav")).to_contain_text(f"({DASH_USER})")
        page.goto(c.url + "/search?q=dat")
        expect(page.locator("input[name=q]")).to_have_value("dat")
        page.click("form.signout button")
        expect(page.locator("h1")).to_have_text("Đăng nhập bảng điều khiển")
        browser.close()
    assert not [m for m in console if "Content Security Policy" in m], console
