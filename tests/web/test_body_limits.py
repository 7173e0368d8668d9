"""Each route reads at most its own body limit (permissions.Route.max_body), and the session
is checked before a large body is read: an anonymous 50 MB POST costs the server nothing."""

from __future__ import annotations

import select
import socket
import threading
import time
from pathlib import Path

import psutil
import pytest
from aiohttp.test_utils import TestClient

from appliance.accounts import Role
from web_ui import permissions

from . import samples
from .conftest import ROLE_USERS, as_role, services_of
from .server import luutru, serve
from .test_documents import FORM, _multipart

MiB = 1 << 20
PASSWORD = "mật khẩu của văn thư"
UPLOADS = {"incoming_create", "outgoing_create", "document_upload", "api_upload",
           # văn bản đi (issue 19): drafts, versions, signed PDFs, certificates and images
           "document_version", "document_sign", "api_outgoing", "api_version", "api_sign",
           "seal_update", "signer_update"}


def test_only_the_upload_routes_take_large_bodies() -> None:
    for route in permissions.ROUTES:
        limit = route.max_body(50 * MiB)
        if route.name in UPLOADS:
            assert limit > 50 * MiB, route.name
        else:
            assert limit <= 256 * 1024, route.name


@pytest.mark.asyncio
@pytest.mark.parametrize("path", ["/signin", "/lang", "/signout", "/users"])
async def test_a_form_larger_than_its_limit_is_refused_unread(
    client: TestClient, path: str
) -> None:
    resp = await client.post(path, data={"x": "a" * (200 * 1024)}, allow_redirects=False)
    assert resp.status in (413, 303, 401), resp.status  # 303/401: sign-in first, unread
    if path in ("/signin", "/lang"):
        assert resp.status == 413 and "quá lớn" in await resp.text()


@pytest.mark.asyncio
async def test_a_chunked_form_is_cut_at_its_limit(client: TestClient) -> None:
    """No Content-Length: the reader stops at the route's limit."""
    async def body():  # type: ignore[no-untyped-def]
        for _ in range(64):
            yield b"a" * 8192
    resp = await client.post("/signin", data=body(),
                             headers={"Content-Type": "application/x-www-form-urlencoded"})
    assert resp.status == 413


@pytest.mark.asyncio
async def test_signed_in_forms_and_json_keep_their_small_limits(client: TestClient) -> None:
    csrf = await as_role(client, Role.CLERK)
    resp = await client.post("/files", data={"csrf_token": csrf, "Title": "x" * (200 * 1024)})
    assert resp.status == 413
    _, token = services_of(client).accounts.create_token(ROLE_USERS[Role.CLERK], "t", "test")
    resp = await client.post("/api/v1/documents/incoming", data=b"{" + b" " * (300 * 1024),
                             headers={"Authorization": f"Bearer {token}",
                                      "Content-Type": "application/json"})
    assert resp.status == 422  # the API's answer to a JSON body over 256 KiB, as before
    assert "too large" in (await resp.json())["error"]["message"]


@pytest.mark.asyncio
async def test_signed_in_clerks_still_upload_scans(client: TestClient) -> None:
    csrf = await as_role(client, Role.CLERK)
    scan = samples.pdf(pages=3)
    resp = await client.post("/documents/incoming", allow_redirects=False, data=_multipart(
        {**FORM, "csrf_token": csrf}, {"scan": ("scan.pdf", scan, "application/pdf")}))
    assert resp.status == 303, await resp.text()


# -- a real server process -------------------------------------------------------------------

def _post_huge(port: int, path: str, size: int, out: list[tuple[int, float]],
               headers: str = "") -> None:
    """Send headers announcing ``size`` bytes, then the body, until the server answers."""
    t0 = time.monotonic()
    status = 0
    with socket.create_connection(("127.0.0.1", port), timeout=30) as s:
        s.sendall(
            f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n"
            f"Content-Type: application/x-www-form-urlencoded\r\n{headers}"
            f"Content-Length: {size}\r\n\r\n".encode()
        )
        chunk, sent, answer = b"a" * (256 * 1024), 0, b""
        try:
            while sent < size and not answer:
                readable, _, _ = select.select([s], [], [], 0)
                if readable:
                    answer = s.recv(4096)
                    break
                s.sendall(chunk[: size - sent])
                sent += len(chunk)
            while b"\r\n" not in answer:
                more = s.recv(4096)
                if not more:
                    break
                answer += more
        except (BrokenPipeError, ConnectionResetError):
            pass
        if answer.startswith(b"HTTP/1.1 "):
            status = int(answer[9:12])
    out.append((status, time.monotonic() - t0))


@pytest.mark.slow
def test_ten_anonymous_50mb_posts_cost_little_memory(data_dir: Path) -> None:
    """Ten parallel 50 MB POSTs to /signin: 413 each, quickly, and the RSS barely moves."""
    added = luutru("user", "add", "--data", str(data_dir), "--username", "vanthu",
                   "--role", "clerk", "--password-stdin", stdin=PASSWORD + "\n")
    assert added.returncode == 0, added.stderr
    token = luutru("user", "token", "--data", str(data_dir), "--username", "vanthu")
    with serve(data_dir) as srv:
        proc = psutil.Process(srv.proc.pid)
        time.sleep(0.5)
        base = proc.memory_info().rss
        peak, answers = base, []  # type: ignore[var-annotated]
        threads = [threading.Thread(target=_post_huge, args=(srv.port, "/signin", 50 * MiB,
                                                             answers)) for _ in range(10)]
        for t in threads:
            t.start()
        while any(t.is_alive() for t in threads):
            peak = max(peak, proc.memory_info().rss)
            time.sleep(0.01)
        growth = (peak - base) / MiB
        assert growth < 60, f"RSS grew {growth:.0f} MB; answers {answers}"
        assert [a[0] for a in answers] == [413] * 10, answers
        assert max(a[1] for a in answers) < 5.0, answers
        # An anonymous 50 MB upload to an upload route is refused before it is read, too.
        answers.clear()
        _post_huge(srv.port, "/api/v1/documents/x/content", 50 * MiB, answers)
        assert answers[0][0] == 401 and answers[0][1] < 5.0, answers
        # A signed-in clerk still uploads (the API streams the file to disk).
        import json
        import urllib.request

        tok = token.stdout.strip()
        req = urllib.request.Request(
            srv.url + "/api/v1/documents/incoming", method="POST",
            data=json.dumps({"TypeName": "Công văn", "CodeNumber": "1", "CodeNotation": "UBND",
                             "OrganName": "Sở Tài chính", "Subject": "V/v thử",
                             "IssuedDate": "05/09/2025"}).encode(),
            headers={"Authorization": f"Bearer {tok}", "Content-Type": "application/json"})
        with urllib.request.urlopen(req, timeout=30) as r:
            doc = json.loads(r.read())["document"]
        req = urllib.request.Request(
            srv.url + f"/api/v1/documents/{doc['id']}/content?name=scan.pdf", method="POST",
            data=samples.pdf(pages=3), headers={"Authorization": f"Bearer {tok}"})
        with urllib.request.urlopen(req, timeout=60) as r:
            assert r.status == 201
