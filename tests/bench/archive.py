"""Archive benchmarks, each against a raw baseline measured in the same run.

Run: ``.venv/bin/python -m tests.bench.archive`` (``--files 100 --size-kb 256`` for a quick run).

- packaging: ``build_package`` of one permanent hồ sơ (MB/s and files/s) against ``zip`` of the
  same content files (default deflate, and ``zip -0`` which stores like we do for scans).
- fixity: ``fixity.audit`` (every content file + the whole log re-verified) against raw
  ``sha256sum`` over the same content files; the target is a ratio ≥ 0.8.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import shutil
import subprocess
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from appliance.archive import fixity
from appliance.archive.sip import build_package
from appliance.clock import TZ, ManualClock
from appliance.datadir import init_data_dir
from appliance.store import Store

ORG = ("000.21.08.H49", "Ủy ban nhân dân xã Đông Hải")


def _populate(store: Store, files: int, size: int) -> tuple[str, list[Path]]:
    f = store.open_file({"FileCatalog": 2025, "FileNotation": "01.VP", "Maintenance": "01",
                         "Title": "Hồ sơ đo hiệu năng", "Creator": "bench"})
    code = str(f.data["FileCode"])
    paths = []
    for i in range(files):
        d = store.register_incoming({
            "TypeName": "Công văn", "CodeNumber": str(i + 1), "CodeNotation": "UBND-VP",
            "IssuedDate": "2025-09-01", "OrganName": "Ủy ban nhân dân tỉnh Quảng Ninh",
            "Subject": f"Văn bản số {i + 1} về phòng, chống thiên tai", "PageAmount": 2,
            "FileCode": code,
        }).record
        body = b"%PDF-1.7\n" + os.urandom(size - 9)  # scans do not compress
        stored = store.content.put_bytes(body)
        store.attach_content(d.id, [{"sha256": stored.sha256, "size": stored.size,
                                     "name": "scan.pdf", "mime": "application/pdf"}])
        paths.append(store.content.path(stored.sha256))
    store.close_file(code)
    return code, paths


def _best(fn: Callable[[], object], runs: int = 3) -> float:
    best = float("inf")
    for _ in range(runs):
        t = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t)
    return best


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--files", type=int, default=300)
    ap.add_argument("--size-kb", type=int, default=512)
    args = ap.parse_args(argv)
    tmp = Path(tempfile.mkdtemp(prefix="bench-archive-"))
    try:
        data = tmp / "appliance"
        init_data_dir(data, *ORG)
        clock = ManualClock(dt.datetime(2025, 10, 1, 9, 0, tzinfo=TZ))
        with Store.open(data, clock=clock) as store:
            code, paths = _populate(store, args.files, args.size_kb * 1024)
            total = sum(p.stat().st_size for p in paths)
            mb = total / 1e6
            print(f"corpus: {len(paths)} content files, {mb:.1f} MB")
            for p in paths:  # both sides read from a warm page cache
                p.read_bytes()

            n = iter(range(1000))
            ours = _best(lambda: build_package(store, code, tmp / f"sip-{next(n)}.zip"))
            listing = tmp / "files.txt"
            listing.write_text("\n".join(str(p) for p in paths) + "\n")

            def run_zip(level: str) -> None:
                out = tmp / "raw.zip"
                out.unlink(missing_ok=True)
                with listing.open() as fh:
                    subprocess.run(["zip", "-q", level, str(out), "-@"], stdin=fh, check=True)

            raw6 = _best(lambda: run_zip("-6"))
            raw0 = _best(lambda: run_zip("-0"))
            print(f"packaging: {mb / ours:8.1f} MB/s {len(paths) / ours:8.1f} files/s "
                  f"(SIP_hoso with METS/EAD, every file re-hashed)")
            print(f"  zip -6:  {mb / raw6:8.1f} MB/s {len(paths) / raw6:8.1f} files/s  "
                  f"ratio ours/zip = {raw6 / ours:.2f}")
            print(f"  zip -0:  {mb / raw0:8.1f} MB/s {len(paths) / raw0:8.1f} files/s  "
                  f"ratio ours/zip-0 = {raw0 / ours:.2f}")

            def run_sha() -> None:
                subprocess.run(["sha256sum", *map(str, paths)], check=True,
                               stdout=subprocess.DEVNULL)

            def run_audit() -> None:
                res = fixity.audit(store, record=False)
                assert res.ok, res.failures[:3]

            raw = _best(run_sha)
            audit = _best(run_audit)
            ratio = raw / audit
            print(f"fixity audit: {mb / audit:8.1f} MB/s {len(paths) / audit:8.1f} files/s "
                  f"(content + whole log re-verified)")
            print(f"  sha256sum:  {mb / raw:8.1f} MB/s  ratio audit/sha256sum = {ratio:.2f} "
                  f"({'meets' if ratio >= 0.8 else 'BELOW'} the 0.8 target)")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
