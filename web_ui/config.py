"""The web UI's settings, parsed once at the entry point into a frozen dataclass."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

MiB = 1 << 20


@dataclass(frozen=True)
class WebConfig:
    data_dir: Path
    host: str = "127.0.0.1"
    port: int = 8080
    mdns: bool = True
    # A scan of a 20-page document at 200 dpi in colour is 10–30 MB as PDF.
    max_upload: int = 50 * MiB
    # Pillow refuses images above this many pixels (A3 at 600 dpi is ~70 Mpx): bombs stop here.
    max_pixels: int = 120_000_000
    max_pdf_pages: int = 2000
    session_hours: float = 12.0
    secure_cookies: bool = False  # True behind HTTPS; the LAN default is plain HTTP
    page_size: int = 50
    register_page_size: int = 50
    # `serve` also runs the sync agent, the capture worker and the archive scheduler
    # (web_ui/background.py); tests of the pages leave them off.
    background: bool = False
    # First-page previews (web_ui/previews.py): renders at once, and how long one may take
    # (and a request may wait for a free slot) before the clerk gets a clear answer.
    preview_renders: int = 2
    preview_timeout: float = 30.0
    # HTTPS: the appliance's LAN certificate and key (luutru/provision/tls.py writes them).
    tls_cert: Path | None = None
    tls_key: Path | None = None


# The settings the CLI exposes, as data (datasette's SETTINGS habit): name -> help text.
SETTINGS = {
    "host": "Address to listen on (0.0.0.0: every interface of the office LAN).",
    "port": "TCP port.",
    "mdns": "Advertise the appliance as _http._tcp on the LAN (mDNS).",
    "max_upload": "Largest accepted upload in bytes.",
    "max_pixels": "Largest accepted image in pixels (decompression bombs are refused).",
    "max_pdf_pages": "Largest accepted PDF in pages.",
    "session_hours": "How long a sign-in lasts.",
    "secure_cookies": "Mark cookies Secure (only when served over HTTPS).",
    "page_size": "Rows per page of search results.",
    "register_page_size": "Rows per page of a register on screen.",
}
