"""Signatures that last, end to end with real processes: the box signs a scan offline with its
TPM agency key (B-B), `luutru sync` takes it to a real `luutru central serve`, `luutru central
ltv run` makes it B-LTA with the suite's TSA, OCSP responder and CRLs, and the next sync brings
the new version back into the box's log; an unreachable TSA leaves the file to retry."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from asn1crypto import x509 as asn1_x509

from appliance import cbor
from appliance.keys import agency
from appliance.kinds import Kind
from appliance.ledger import Entry
from appliance.pdfsign import sign_pdf
from appliance.store import Store
from sync.central import ltv
from tests.conftest import ORG_NAME, incoming
from tests.pki import sample_pdf
from tests.pki_services import PkiServices, der, pki_factory
from tests.swtpm import Swtpm, swtpm, swtpm_factory
from tests.sync.procs import CentreServer, new_appliance, run, run_json, token

__all__ = ["pki_factory", "swtpm", "swtpm_factory"]
pytestmark = pytest.mark.slow


def _signed_document(d: Path, text: str) -> tuple[str, str]:
    """A registered văn bản đến whose content is a PDF signed by the agency key (B-B)."""
    with agency.open_agency_key(d) as key:
        signed = sign_pdf(sample_pdf(text), key, agency_name=ORG_NAME)
    with Store.open(d) as s:
        doc = s.register_incoming(incoming(CodeNumber=text[-4:])).record
        stored = s.content.put_bytes(signed)
        s.attach_content(doc.id, [{"sha256": stored.sha256, "size": stored.size,
                                   "name": f"{text}.pdf", "mime": "application/pdf"}])
    return doc.id, stored.sha256


def _box_and_centre(tmp_path: Path, swtpm: Swtpm, pki_factory: Any) -> tuple[Path, Path, Any]:
    """A box with a TPM agency key certified by the suite's PKI, and a centre set up to make
    its signatures long-term valid with the suite's TSA."""
    d = new_appliance(tmp_path / "app")
    agency.create_agency_tpm_key(d, swtpm.tcti)
    with agency.open_agency_key(d) as key:
        public = key.public_key()
    pki = pki_factory(extra={"agency": public}, subjects={"agency": ORG_NAME})
    agency.import_agency_cert(d, pki.identity("agency").chain_pem())
    centre = tmp_path / "centre"
    run("central", "init", "--data", str(centre))
    (centre / "trust").mkdir()
    (centre / "trust" / "root.pem").write_bytes(pki.trust_roots_pem())
    config = json.loads((centre / "centre.json").read_text("utf-8"))
    config["ltv"] = {"tsa_url": pki.tsa_url(), "trust_roots": ["trust/root.pem"],
                     "retry_base_s": 0}
    (centre / "centre.json").write_text(json.dumps(config), "utf-8")
    return d, centre, pki


@pytest.fixture
def setup(
    tmp_path: Path, swtpm: Swtpm, pki_factory: Any
) -> Iterator[tuple[Path, Path, PkiServices, CentreServer]]:
    d, centre, pki = _box_and_centre(tmp_path, swtpm, pki_factory)
    server = CentreServer(centre).start()
    try:
        run("enrol", "--data", str(d), "--centre", server.url, "--token", token(centre))
        yield d, centre, pki, server
    finally:
        server.kill(15)


def _sync(d: Path) -> Any:
    return run_json("sync", "--data", str(d), "--once", "--json")


def _ltv_report(centre: Path) -> Any:
    return run_json("central", "ltv", "report", "--data", str(centre), "--json")


def test_box_signs_centre_upgrades_box_records_the_new_version(
    setup: tuple[Path, Path, PkiServices, CentreServer],
) -> None:
    d, centre, pki, _ = setup
    doc_id, original = _signed_document(d, "So hoa 0001")
    assert _sync(d)["pending_content"] == 0
    done = run_json("central", "ltv", "run", "--data", str(centre), "--json")
    assert (done["upgraded"], done["retry"], done["refused"]) == (1, 0, 0), done
    rep = _ltv_report(centre)
    assert rep["levels"] == {"B-LTA": 1} and rep["undelivered"] == 1

    cycle = _sync(d)
    assert cycle["upgrades_recorded"] == 1, cycle
    with Store.open(d) as s:
        content = s.get("document", doc_id).data["Content"]
        assert next(c["sha256"] for c in content) == original
        new = content[-1]
        assert (new["from"], new["ltv"]) == (original, "B-LTA")
        with s.content.open(original) as fh:  # the original bytes stay, and still verify
            assert hashlib.sha256(fh.read()).hexdigest() == original
        # ... stored once: as the few byte ranges (the /Contents digits) that differ from the
        # upgrade, not as a second copy of the file.
        assert not s.content.has_file(original) and s.content.has_file(new["sha256"])
        assert s.content.derived_path(original).stat().st_size < 10_000
        with s.content.open(new["sha256"]) as fh:
            upgraded = fh.read()
        kinds = [Entry.from_map(cbor.loads(bytes(r[0]))).kind
                 for r in s.reader().execute("SELECT entry FROM log ORDER BY idx")]
    assert kinds.count(Kind.DOCUMENT_LTV) == 1
    root = asn1_x509.Certificate.load(der(pki.root))
    assert ltv.level(upgraded, [root]) == "B-LTA"

    _sync(d)  # the document.ltv entry reaches the centre: nothing waits any more
    assert _ltv_report(centre)["undelivered"] == 0
    assert _sync(d)["upgrades_recorded"] == 0
    assert run("verify", "--data", str(d), "--json", check=False).returncode == 0


def test_unreachable_tsa_is_retried_and_said(
    setup: tuple[Path, Path, PkiServices, CentreServer],
) -> None:
    d, centre, pki, _ = setup
    _signed_document(d, "So hoa 0002")
    _sync(d)
    with pki.offline():
        p = run("central", "ltv", "run", "--data", str(centre), "--json", check=False)
    assert p.returncode == 1
    first = json.loads(p.stdout.strip().splitlines()[-1])
    assert (first["retry"], first["upgraded"]) == (1, 0)
    rep = _ltv_report(centre)
    assert rep["states"] == {"retry": 1}
    (waiting,) = rep["retrying"]
    assert waiting["attempts"] == 1 and "did not answer" in waiting["error"]
    again = run_json("central", "ltv", "run", "--data", str(centre), "--json")
    assert again["upgraded"] == 1
    assert _ltv_report(centre)["states"] == {"upgraded": 1}


def test_a_box_that_syncs_by_usb_gets_its_upgrades_on_the_stick(
    tmp_path: Path, swtpm: Swtpm, pki_factory: Any
) -> None:
    """No link at all: the stick takes the signed scan to the centre, the centre makes it
    B-LTA, the next `central import` puts the new version on the stick beside the signed
    status that lists it, and `sync --import-receipts` checks and records it; a version
    altered on the stick is refused and the original stays."""
    d, centre, _ = _box_and_centre(tmp_path, swtpm, pki_factory)
    stick = tmp_path / "stick"
    run("enrol", "--data", str(d), "--token", token(centre), "--export", str(stick))
    run("central", "import", str(stick), "--data", str(centre))
    run("sync", "--data", str(d), "--import-receipts", str(stick))
    doc_id, original = _signed_document(d, "So hoa 0003")
    run("sync", "--data", str(d), "--export", str(stick))
    run("central", "import", str(stick), "--data", str(centre))
    done = run_json("central", "ltv", "run", "--data", str(centre), "--json")
    assert done["upgraded"] == 1, done
    imported = run_json("central", "import", str(stick), "--data", str(centre), "--json")
    assert imported["devices"][0]["upgrades_written"] == 1, imported
    (version,) = (stick / "luutru-sync").glob("*/inbox/upgrades/*")

    good = version.read_bytes()
    version.write_bytes(good[:-40] + b"%" * 40)  # altered on the way: refused
    got = run_json("sync", "--data", str(d), "--import-receipts", str(stick), "--json")
    assert got["upgrades_recorded"] == 0 and len(got["upgrades_refused"]) == 1, got
    version.write_bytes(good)
    got = run_json("sync", "--data", str(d), "--import-receipts", str(stick), "--json")
    assert got["upgrades_recorded"] == 1 and got["upgrades_refused"] == [], got
    with Store.open(d) as s:
        content = s.get("document", doc_id).data["Content"]
        assert (content[-1]["from"], content[-1]["ltv"]) == (original, "B-LTA")
        assert content[-1]["sha256"] == version.name
    again = run_json("sync", "--data", str(d), "--import-receipts", str(stick), "--json")
    assert again["upgrades_recorded"] == 0  # recorded once
    # The document.ltv entry travels on the next stick: the centre stops listing it.
    run("sync", "--data", str(d), "--export", str(stick))
    run("central", "import", str(stick), "--data", str(centre))
    assert _ltv_report(centre)["undelivered"] == 0
    assert run("verify", "--data", str(d), "--json", check=False).returncode == 0
