"""Network scanners speaking eSCL (AirScan): found by mDNS `_uscan._tcp`, driven over HTTP.

The flow is the one sane-airscan uses: GET ScannerCapabilities → POST ScanJobs (201 and a
Location) → GET {job}/NextDocument until 404 → DELETE {job}. A scanner that drops off the
network mid-batch raises ScannerInterrupted after every page already received.
"""

from __future__ import annotations

import asyncio
import xml.etree.ElementTree as ET
from collections.abc import AsyncGenerator, Iterator, Sequence
from dataclasses import dataclass, field

from ..errors import ScannerInterrupted, SourceError
from ..pipeline import InputFile

NS = {
    "scan": "http://schemas.hp.com/imaging/escl/2011/05/03",
    "pwg": "http://www.pwg.org/schemas/2010/12/sm",
}
SERVICE = "_uscan._tcp.local."
A4_300THS = (2480, 3508)  # 210 × 297 mm in 1/300 inch
FORMAT_PREFERENCE = ("image/png", "image/jpeg", "application/pdf")
_EXT = {"image/png": "png", "image/jpeg": "jpg", "application/pdf": "pdf"}


@dataclass(frozen=True)
class Capabilities:
    make_and_model: str
    resolutions: tuple[int, ...]
    colour_modes: tuple[str, ...]
    formats: tuple[str, ...]
    has_platen: bool
    has_adf: bool


def parse_capabilities(xml: bytes) -> Capabilities:
    try:
        root = ET.fromstring(xml)
    except ET.ParseError as exc:
        raise SourceError(f"the scanner's capabilities are not valid XML ({exc})") from exc

    def texts(path: str) -> list[str]:
        return [e.text.strip() for e in root.iterfind(path, NS) if e.text]

    return Capabilities(
        make_and_model=(root.findtext("pwg:MakeAndModel", "", NS) or "").strip(),
        resolutions=tuple(sorted({int(t) for t in texts(".//scan:XResolution") if t.isdigit()})),
        colour_modes=tuple(dict.fromkeys(texts(".//scan:ColorMode"))),
        formats=tuple(
            dict.fromkeys(texts(".//pwg:DocumentFormat") + texts(".//scan:DocumentFormatExt"))
        ),
        has_platen=root.find("scan:Platen", NS) is not None,
        has_adf=root.find("scan:Adf", NS) is not None,
    )


def scan_settings(dpi: int, colour: bool, adf: bool, fmt: str) -> bytes:
    w, h = A4_300THS
    mode = "RGB24" if colour else "Grayscale8"
    source = "Feeder" if adf else "Platen"
    return f"""<?xml version="1.0" encoding="UTF-8"?>
<scan:ScanSettings xmlns:scan="{NS["scan"]}" xmlns:pwg="{NS["pwg"]}">
  <pwg:Version>2.63</pwg:Version>
  <scan:Intent>Document</scan:Intent>
  <pwg:ScanRegions><pwg:ScanRegion>
    <pwg:ContentRegionUnits>escl:ThreeHundredthsOfInches</pwg:ContentRegionUnits>
    <pwg:XOffset>0</pwg:XOffset><pwg:YOffset>0</pwg:YOffset>
    <pwg:Width>{w}</pwg:Width><pwg:Height>{h}</pwg:Height>
  </pwg:ScanRegion></pwg:ScanRegions>
  <pwg:InputSource>{source}</pwg:InputSource>
  <scan:ColorMode>{mode}</scan:ColorMode>
  <scan:XResolution>{dpi}</scan:XResolution><scan:YResolution>{dpi}</scan:YResolution>
  <pwg:DocumentFormat>{fmt}</pwg:DocumentFormat>
  <scan:DocumentFormatExt>{fmt}</scan:DocumentFormatExt>
</scan:ScanSettings>""".encode()


@dataclass
class EsclSource:
    """One batch from an eSCL scanner at ``url`` (e.g. http://10.0.0.5/eSCL)."""

    url: str
    dpi: int = 300
    colour: bool = True
    adf: bool = False
    timeout_s: float = 60.0
    busy_retries: int = 20
    capabilities: Capabilities | None = field(default=None, init=False)

    @property
    def name(self) -> str:
        return f"escl:{self.url}"

    @property
    def base(self) -> str:
        return self.url.rstrip("/")

    def pages(self) -> Iterator[InputFile]:
        """The async client driven from a private event loop, one page at a time."""
        loop = asyncio.new_event_loop()
        agen = self.apages()
        try:
            while True:
                try:
                    page = loop.run_until_complete(agen.__anext__())
                except StopAsyncIteration:
                    return
                yield page
        finally:
            loop.run_until_complete(agen.aclose())
            loop.close()

    async def apages(self) -> AsyncGenerator[InputFile, None]:
        import aiohttp

        timeout = aiohttp.ClientTimeout(total=None, sock_connect=10, sock_read=self.timeout_s)
        async with aiohttp.ClientSession(timeout=timeout) as http:
            try:
                async with http.get(f"{self.base}/ScannerCapabilities") as r:
                    if r.status != 200:
                        raise SourceError(f"the scanner answered {r.status} for its capabilities")
                    caps = parse_capabilities(await r.read())
            except aiohttp.ClientError as exc:
                raise SourceError(
                    f"the network scanner at {self.url} does not answer ({exc})"
                ) from exc
            self.capabilities = caps
            fmt = self._choose(caps)
            body = scan_settings(self.dpi, self.colour, self.adf, fmt)
            try:
                async with http.post(
                    f"{self.base}/ScanJobs", data=body, headers={"Content-Type": "text/xml"}
                ) as r:
                    if r.status == 503:
                        raise SourceError("the scanner is busy; try again in a moment")
                    if r.status != 201 or "Location" not in r.headers:
                        raise SourceError(f"the scanner refused the scan job ({r.status})")
                    job = r.headers["Location"].rstrip("/")
            except aiohttp.ClientError as exc:
                raise SourceError(f"the scan job could not be started ({exc})") from exc
            if job.startswith("/"):
                from urllib.parse import urlsplit

                parts = urlsplit(self.base)
                job = f"{parts.scheme}://{parts.netloc}{job}"
            n = 0
            try:
                while True:
                    data = await self._next(http, job, n)
                    if data is None:
                        break
                    n += 1
                    yield InputFile(f"escl-{n:04d}.{_EXT.get(fmt, 'bin')}", data)
            finally:
                try:
                    async with http.delete(job):
                        pass
                except aiohttp.ClientError:
                    pass  # the scanner is gone: nothing to clean up on its side
            if n == 0:
                raise SourceError("the scanner sent no page (is the feeder empty?)")

    async def _next(self, http: object, job: str, n: int) -> bytes | None:
        import aiohttp

        assert isinstance(http, aiohttp.ClientSession)
        for _ in range(self.busy_retries):
            try:
                async with http.get(f"{job}/NextDocument") as r:
                    if r.status == 404:
                        return None
                    if r.status == 503:
                        await asyncio.sleep(0.5)  # still scanning the page
                        continue
                    if r.status != 200:
                        raise ScannerInterrupted(
                            f"the scanner answered {r.status} after {n} page(s)"
                        )
                    return await r.read()
            except (TimeoutError, aiohttp.ClientError) as exc:
                raise ScannerInterrupted(
                    f"the network scanner stopped answering after {n} page(s) ({exc})"
                ) from exc
        raise ScannerInterrupted(f"the scanner stayed busy after {n} page(s)")

    def _choose(self, caps: Capabilities) -> str:
        if self.dpi not in caps.resolutions and caps.resolutions:
            usable = [r for r in caps.resolutions if r >= 200]
            if not usable:
                raise SourceError(
                    f"{caps.make_and_model or 'the scanner'} offers only "
                    f"{', '.join(map(str, caps.resolutions))} dpi; at least 200 dpi is required"
                )
            self.dpi = min(usable, key=lambda r: abs(r - self.dpi))
        if self.adf and not caps.has_adf:
            raise SourceError("the scanner has no document feeder")
        for fmt in FORMAT_PREFERENCE:
            if fmt in caps.formats:
                return fmt
        raise SourceError(f"the scanner offers no usable format ({', '.join(caps.formats)})")


@dataclass(frozen=True)
class FoundScanner:
    name: str
    url: str
    addresses: tuple[str, ...]
    port: int


def discover(timeout: float = 3.0, interfaces: Sequence[str] | None = None) -> list[FoundScanner]:
    """eSCL scanners announcing `_uscan._tcp` by mDNS on ``interfaces`` (default: all)."""
    import time

    from zeroconf import InterfaceChoice, IPVersion, ServiceBrowser, ServiceListener, Zeroconf

    names: list[str] = []

    class Listener(ServiceListener):
        def add_service(self, zc: Zeroconf, type_: str, name: str) -> None:
            names.append(name)

        def update_service(self, zc: Zeroconf, type_: str, name: str) -> None:
            pass

        def remove_service(self, zc: Zeroconf, type_: str, name: str) -> None:
            pass

    zc = Zeroconf(
        interfaces=list(interfaces) if interfaces else InterfaceChoice.All,
        ip_version=IPVersion.V4Only,
    )
    found: list[FoundScanner] = []
    try:
        browser = ServiceBrowser(zc, SERVICE, Listener())
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and not names:
            time.sleep(0.05)
        time.sleep(min(0.3, max(0.0, deadline - time.monotonic())))  # late answers
        for name in dict.fromkeys(names):
            info = zc.get_service_info(SERVICE, name, timeout=int(timeout * 1000))
            if info is None or not info.port:
                continue
            addrs = tuple(info.parsed_addresses())
            if not addrs:
                continue
            props = {
                k.decode(): (v or b"").decode() for k, v in (info.properties or {}).items()
            }
            path = props.get("rs", "eSCL").strip("/")
            scheme = "https" if props.get("TLS") == "1" else "http"
            url = f"{scheme}://{addrs[0]}:{info.port}/{path}"
            found.append(FoundScanner(name.removesuffix("." + SERVICE), url, addrs, info.port))
        browser.cancel()
    finally:
        zc.close()
    return found
