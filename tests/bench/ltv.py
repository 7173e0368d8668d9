"""The centre's signature upgrade of a 1-page signed PDF (B-B → B-LTA), against a raw baseline
measured in the same run: one RFC 3161 request to the same TSA (the upgrade makes two, plus
OCSP and CRL fetches, all on loopback from the test PKI of tests/pki_services.py).

Run: ``taskset -c 0 .venv/bin/python -m tests.bench.ltv [--runs 9]``
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

from asn1crypto import x509 as asn1_x509

from appliance.pdfsign import sign_pdf
from sync.central import ltv
from tests.pki import sample_pdf
from tests.pki_services import der, start_pki


class _Key:
    def __init__(self, identity: Any) -> None:
        self.identity = identity

    def pdf_signer(self) -> Any:
        return self.identity.pdf_signer()


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=9)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        pki = start_pki(Path(tmp))
        try:
            pdf = sign_pdf(sample_pdf("Bench"), _Key(pki.identity("signer")), agency_name="UBND")
            settings = ltv.LtvSettings(tsa_url=pki.tsa_url(), trust_roots=("root.pem",))
            ctx = ltv.LtvContext(settings, (asn1_x509.Certificate.load(der(pki.root)),))
            ltv.upgrade(pdf, ctx)  # warm-up: imports, fonts, connections
            upgrade, raw = [], []
            for _ in range(args.runs):
                t = time.perf_counter()
                up = ltv.upgrade(pdf, ctx)
                upgrade.append(time.perf_counter() - t)
                t = time.perf_counter()
                asyncio.run(ctx.timestamper().async_timestamp(
                    hashlib.sha256(b"x").digest(), "sha256"))
                raw.append(time.perf_counter() - t)
            level_t = time.perf_counter()
            level = ltv.level(up.pdf, ctx.roots)
            level_s = time.perf_counter() - level_t
        finally:
            pki.stop()
    mu, mr = statistics.median(upgrade), statistics.median(raw)
    print(f"upgrade B-B → {up.level}: median {mu * 1000:.0f} ms over {args.runs} runs "
          f"({len(pdf)} → {len(up.pdf)} bytes)")
    print(f"baseline, one RFC 3161 request: median {mr * 1000:.0f} ms; ratio {mu / mr:.1f}×")
    print(f"level check (pyHanko AdES LTA, offline): {level} in {level_s * 1000:.0f} ms")


if __name__ == "__main__":
    main()
