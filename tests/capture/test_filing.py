"""Filing a scan: the record it makes belongs to the fonds of the hồ sơ it is filed into."""

from __future__ import annotations

import pytest

from appliance.capture import filing
from appliance.capture.separator import Target
from appliance.store import Store
from tests.archive.conftest import pdf_bytes
from tests.conftest import ORG_ID

OTHER = "000.31.08.H49"


@pytest.mark.parametrize("registered", [False, True])
def test_a_scan_filed_into_another_fonds_hoso_takes_that_fonds(
    store: Store, registered: bool
) -> None:
    """A merged commune's fonds still open on the box: a scan aimed at one of its hồ sơ (a
    draft to describe, or registered at once) is of that fonds, not the box's own."""
    store.create_fonds({"FondCode": OTHER, "FondName": "Phông Ủy ban nhân dân xã An Hòa"})
    f = store.open_file({"FileCatalog": 2025, "FileNotation": "02.VP", "Maintenance": "01",
                         "Title": "Hồ sơ của xã An Hòa", "FondCode": OTHER, "OrganId": OTHER})
    assert f.data["FondCode"] == OTHER
    stored = store.content.put_bytes(pdf_bytes("trang quét"))
    meta = ({"CodeNumber": "12", "CodeNotation": "UBND-VP", "OrganName": "UBND tỉnh",
             "TypeName": "Công văn", "Subject": "V/v thử"} if registered else {})
    doc = filing.new_document(
        store, Target(file_code=str(f.data["FileCode"])), meta,
        filing.content_ref(stored.sha256, stored.size, "scan.pdf"), 1, "capture",
    )
    assert doc.data["FondCode"] == OTHER != ORG_ID
    assert doc.data["FileCode"] == f.data["FileCode"]
