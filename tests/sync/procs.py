"""Real processes and sockets for sync tests: the `luutru` CLI, a centre server, a TCP relay
that can cut the link or flip a byte in flight, and network namespaces joined by linkem.py."""

from __future__ import annotations

import asyncio
import dataclasses
import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
import uuid
import zlib
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from appliance.config import load_config, save_config
from appliance.datadir import init_data_dir
from appliance.store import Store
from tests.conftest import ORG_ID, ORG_NAME, SHARED, incoming

REPO = Path(__file__).resolve().parents[2]
LUUTRU = [sys.executable, "-m", "luutru"]
LINKEM = SHARED / "tools" / "linkem.py"


def run(
    *args: str, netns: str | None = None, timeout: float = 300, check: bool = True
) -> subprocess.CompletedProcess[str]:
    cmd = [*LUUTRU, *args]
    if netns:
        cmd = ["ip", "netns", "exec", netns, *cmd]
    p = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, timeout=timeout)
    if check and p.returncode != 0:
        raise AssertionError(f"{' '.join(args)} failed ({p.returncode}):\n{p.stdout}\n{p.stderr}")
    return p


def run_json(*args: str, **kw: Any) -> Any:
    p = run(*args, **kw)
    return json.loads(p.stdout.strip().splitlines()[-1])


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class CentreServer:
    """`luutru central serve` as a child process."""

    def __init__(self, data: Path, host: str = "127.0.0.1", port: int | None = None,
                 netns: str | None = None, extra: tuple[str, ...] = ()) -> None:
        self.data, self.host, self.netns, self.extra = data, host, netns, extra
        self.port = port or free_port()
        self.proc: subprocess.Popen[str] | None = None

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def start(self) -> CentreServer:
        cmd = [*LUUTRU, "central", "serve", "--data", str(self.data), "--host", self.host,
               "--port", str(self.port), *self.extra]
        if self.netns:
            cmd = ["ip", "netns", "exec", self.netns, *cmd]
        self.proc = subprocess.Popen(
            cmd, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True
        )
        assert self.proc.stdout is not None
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            line = self.proc.stdout.readline()
            if "listening" in line:
                return self
            if self.proc.poll() is not None:
                break
        raise AssertionError("the centre did not start")

    def kill(self, sig: int = signal.SIGKILL) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(sig)
            self.proc.wait(timeout=30)
        self.proc = None

    def __enter__(self) -> CentreServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.kill(signal.SIGTERM)


def new_appliance(path: Path, org_id: str = ORG_ID) -> Path:
    init_data_dir(path, org_id, ORG_NAME, "software")
    return path


def set_sync(data_dir: Path, **fields: Any) -> None:
    cfg = load_config(data_dir)
    save_config(data_dir, dataclasses.replace(cfg, sync=dataclasses.replace(cfg.sync, **fields)))


def populate(
    data_dir: Path,
    docs: int,
    content: tuple[int, ...] = (),
    classified: int = 0,
    subject: str = "Về việc quản lý đất đai",
    seed: int = 0,
    noise: int = 0,
) -> list[str]:
    """Register ``docs`` documents; the first ones get content files of the given sizes;
    ``noise``: each subject ends with that many random letters (entries the sync's deflate
    cannot shrink much)."""
    out: list[str] = []
    with Store.open(data_dir) as s:
        for i in range(docs):
            tail = f" {secrets.token_urlsafe(noise)[:noise]}" if noise else ""
            rec = s.register_incoming(incoming(
                CodeNumber=str(seed * 1000 + i + 1), Subject=f"{subject} {seed}-{i}{tail}"
            )).record
            out.append(rec.id)
            if i < len(content):
                blob = os.urandom(content[i])
                c = s.content.put_bytes(blob)
                s.attach_content(
                    rec.id, [{"sha256": c.sha256, "size": c.size, "name": f"scan{i}.pdf"}]
                )
        for i in range(classified):
            rec = s.register_incoming(
                incoming(CodeNumber=str(9000 + i), Mode="03", Subject="Văn bản mật")
            ).record
            c = s.content.put_bytes(os.urandom(2000))
            s.attach_content(rec.id, [{"sha256": c.sha256, "size": c.size, "name": "mat.pdf"}])
        s.wait_sealed()
    return out


def tree_size(data_dir: Path) -> int:
    with Store.open(data_dir, readonly=True) as s:
        return s.tree_head()[0]


def state(data_dir: Path) -> dict[str, Any]:
    return dict(json.loads((data_dir / "sync" / "state.json").read_text()))


def token(centre_dir: Path, org_id: str = ORG_ID) -> str:
    return run("central", "token", "--data", str(centre_dir), "--org-id", org_id).stdout.split(
        "\n"
    )[-2]


def report(centre_dir: Path) -> dict[str, Any]:
    return dict(run_json("central", "report", "--data", str(centre_dir), "--json"))


def row(rep: dict[str, Any], org_id: str = ORG_ID) -> dict[str, Any]:
    (r,) = [r for r in rep["appliances"] if r["org_id"] == org_id]
    return dict(r)


def receipt_sizes(data_dir: Path) -> list[int]:
    from appliance.ledger import Entry

    with Store.open(data_dir, readonly=True) as s:
        return [
            int(e.data["tree_size"])
            for e in (Entry.decode(raw) for _, raw in s.entries())
            if e.kind == "sync.receipt" and e.data
        ]


def centre_entries(centre_dir: Path, app_id: str) -> list[bytes | None]:
    from sync.central.centre import open_centre

    with open_centre(centre_dir) as c, c.storage.view() as v:
        return [r.entry for r in v.entries(app_id, 0, 1 << 40)]


def appliance_id(data_dir: Path) -> str:
    with Store.open(data_dir) as s:
        assert s.key is not None
        return s.key.kid.hex()


def assert_in_sync(data_dir: Path, centre_dir: Path) -> None:
    """Nothing lost, nothing duplicated: the centre holds exactly the acknowledged prefix."""
    st = state(data_dir)
    app_id = appliance_id(data_dir)
    stored = centre_entries(centre_dir, app_id)
    with Store.open(data_dir, readonly=True) as s:
        mine = [raw for _, raw in s.entries(0, st["acknowledged_size"])]
    assert len(stored) == st["acknowledged_size"]
    for a, b in zip(stored, mine, strict=True):
        assert a is None or a == b
    sizes = receipt_sizes(data_dir)
    assert len(sizes) == len(set(sizes)), f"duplicate receipts {sizes}"
    assert st["confirmed_size"] == max(sizes)


# -- a TCP relay we can cut, or make flip a byte ------------------------------------------


class Relay:
    """listen -> target, in a thread; ``cut()`` drops every connection and refuses new ones."""

    def __init__(self, target: tuple[str, int]) -> None:
        self.target = target
        self.port = free_port()
        self.tamper: bytes | None = None  # flip a bit of the first upstream bytes holding it
        self.tampered = False
        self._loop = asyncio.new_event_loop()
        self._conns: set[asyncio.StreamWriter] = set()
        self._up = True
        self._server: asyncio.base_events.Server | None = None
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)
        self._thread.start()
        asyncio.run_coroutine_threadsafe(self._listen(), self._loop).result(10)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    async def _listen(self) -> None:
        self._server = await asyncio.start_server(self._handle, "127.0.0.1", self.port)

    async def _pipe(self, r: asyncio.StreamReader, w: asyncio.StreamWriter, up: bool) -> None:
        held = b""  # upstream bytes of a request not yet whole, while a tamper is pending
        try:
            while data := await r.read(65536):
                if up and self.tamper and not self.tampered:
                    data, held = self._tampered(held + data)
                elif held:
                    data, held = held + data, b""
                w.write(data)
                await w.drain()
        except (ConnectionError, OSError):
            pass
        finally:
            w.close()

    def _tampered(self, buf: bytes) -> tuple[bytes, bytes]:
        """(bytes to pass on, bytes to hold): the first occurrence of ``tamper`` with a bit
        flipped, in the bytes as they travel or, as an attacker on the path would do it, in a
        deflated request body (inflated, changed, deflated again, its length set anew);
        a deflated request is held until it is whole."""
        assert self.tamper is not None
        pos = buf.find(self.tamper)
        if pos >= 0:
            self.tampered = True
            return buf[:pos] + bytes([buf[pos] ^ 0x01]) + buf[pos + 1:], b""
        end = buf.find(b"\r\n\r\n")
        if end < 0:
            return b"", buf
        head = buf[:end].decode("latin-1")
        fields = dict(
            (k.strip().lower(), v.strip())
            for k, _, v in (line.partition(":") for line in head.split("\r\n")[1:])
        )
        if fields.get("content-encoding") != "deflate":
            return buf, b""
        n = int(fields["content-length"])
        if len(buf) < end + 4 + n:
            return b"", buf
        body = zlib.decompress(buf[end + 4:end + 4 + n])
        pos = body.find(self.tamper)
        if pos < 0:
            return buf, b""
        self.tampered = True
        body = zlib.compress(body[:pos] + bytes([body[pos] ^ 0x01]) + body[pos + 1:])
        lines = [line if not line.lower().startswith("content-length:")
                 else f"Content-Length: {len(body)}" for line in head.split("\r\n")]
        return "\r\n".join(lines).encode("latin-1") + b"\r\n\r\n" + body + buf[end + 4 + n:], b""

    async def _handle(self, r: asyncio.StreamReader, w: asyncio.StreamWriter) -> None:
        if not self._up:
            w.transport.abort()
            return
        try:
            ur, uw = await asyncio.open_connection(*self.target)
        except OSError:
            w.transport.abort()
            return
        self._conns.update((w, uw))
        await asyncio.gather(self._pipe(r, uw, True), self._pipe(ur, w, False))
        self._conns.difference_update((w, uw))

    def cut(self) -> None:
        def go() -> None:
            self._up = False
            for w in list(self._conns):
                w.transport.abort()
            self._conns.clear()

        self._loop.call_soon_threadsafe(go)

    def restore(self) -> None:
        self._loop.call_soon_threadsafe(setattr, self, "_up", True)

    def close(self) -> None:
        self.cut()
        if self._server is not None:
            self._loop.call_soon_threadsafe(self._server.close)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(5)


# -- network namespaces + linkem ------------------------------------------------------------


def namespaces_available() -> str | None:
    """None if two namespaces and a TUN link can be made here, else the reason."""
    if os.geteuid() != 0:
        return "network namespaces need root"
    if not shutil.which("ip"):
        return "iproute2 is not installed"
    if not Path("/dev/net/tun").exists():
        return "/dev/net/tun is missing"
    if not LINKEM.exists():
        return f"{LINKEM} is missing"
    name = f"lt-probe-{uuid.uuid4().hex[:6]}"
    p = subprocess.run(["ip", "netns", "add", name], capture_output=True, text=True)
    if p.returncode != 0:
        return f"cannot create a network namespace: {p.stderr.strip()}"
    subprocess.run(["ip", "netns", "del", name], capture_output=True)
    return None


@dataclasses.dataclass
class Link:
    centre_ns: str
    appliance_ns: str
    proc: subprocess.Popen[str]
    centre_ip: str = "10.232.0.1"

    def outage(self) -> None:
        """Toggle a silent outage (packets vanish, interfaces stay up)."""
        self.proc.send_signal(signal.SIGUSR1)

    def tx_bytes(self, ns: str, dev: str) -> int:
        out = subprocess.run(
            ["ip", "-n", ns, "-s", "-j", "link", "show", dev], capture_output=True, text=True,
            check=True,
        ).stdout
        return int(json.loads(out)[0]["stats64"]["tx"]["bytes"])


@contextmanager
def emulated_link(
    rate_kbit: float = 256, delay_ms: float = 300, loss: float = 0.05, seed: int = 1
) -> Iterator[Link]:
    """Two namespaces (centre 10.232.0.1, appliance 10.232.0.2) joined by linkem.py."""
    tag = uuid.uuid4().hex[:6]
    a, b = f"lt-c-{tag}", f"lt-a-{tag}"
    for ns in (a, b):
        subprocess.run(["ip", "netns", "add", ns], check=True)
        subprocess.run(["ip", "-n", ns, "link", "set", "lo", "up"], check=True)
    proc = subprocess.Popen(
        [sys.executable, str(LINKEM), a, b, "--rate-kbit", str(rate_kbit), "--delay-ms",
         str(delay_ms), "--loss", str(loss), "--seed", str(seed)],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        if "up" not in line:
            raise AssertionError(f"linkem did not come up: {line}")
        yield Link(a, b, proc)
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
        for ns in (a, b):
            subprocess.run(["ip", "netns", "del", ns], capture_output=True)


DASH_USER, DASH_PASSWORD = "giamsat", "mật khẩu bảng điều khiển"


def dashboard_opener(centre_url: str, centre_dir: Path) -> Any:
    """A urllib opener signed in to the centre's dashboard (the account is made first), as a
    browser is: the sign-in form's CSRF token and cookie, then the session cookie."""
    import http.cookiejar
    import re
    import urllib.parse
    import urllib.request

    from web_ui.central.auth import DashboardUsers

    users = DashboardUsers(centre_dir)
    if DASH_USER not in users.users():
        users.set_password(DASH_USER, DASH_PASSWORD)
    jar = http.cookiejar.CookieJar()
    opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(jar))
    page = opener.open(f"{centre_url}/signin", timeout=10).read().decode()
    m = re.search(r'name="csrf_token" value="([0-9a-f]+)"', page)
    assert m, "no CSRF token on the dashboard's sign-in page"
    form = urllib.parse.urlencode(
        {"csrf_token": m.group(1), "username": DASH_USER, "password": DASH_PASSWORD, "next": "/"}
    ).encode()
    opener.open(f"{centre_url}/signin", data=form, timeout=10).read()
    assert any(c.name == "luutru_centre" for c in jar), "the dashboard did not sign in"
    return opener
