"""Independent copies (appliance/archive/copies.py, TT 05/2025 Điều 27): a backup medium counts
once it holds a set (within its rated life), the centre only once its receipts cover every entry
of the log and it has every content file."""

from __future__ import annotations

from pathlib import Path

from appliance import writes
from appliance.archive.backup import backup
from appliance.archive.copies import REQUIRED, independent_copies, latest_receipt_size
from appliance.kinds import Kind
from appliance.store import Store, Txn
from tests.conftest import incoming

CENTRE = {"kind": "centre", "label": "Trung tâm dữ liệu tỉnh", "pending_content": 0,
          "enrolled": True}


def _receipt(store: Store, tree_size: int) -> int:
    """A sync.receipt entry as sync/receipts.py appends it (the centre's data, abridged)."""

    def job(txn: Txn) -> int:
        return writes.append_event(txn, Kind.SYNC_RECEIPT, "sync", {
            "centre": "http://centre", "witness": "luutru-centre/x", "tree_size": tree_size,
            "root_hash": "00" * 32, "accepted_at": "2025-09-15T09:30:00+07:00",
            "receipt": "",
        }).index

    return store.writer_or_fail().call(job)


def test_nothing_but_the_appliance_is_no_copy(store: Store) -> None:
    """No media, no receipt: zero copies of the two required, the centre listed at 0."""
    status = independent_copies(store, [])
    assert status.count == 0 and not status.ok and REQUIRED == 2
    assert status.copies == [{**CENTRE, "tree_size": 0, "counts": False}]
    assert status.tree_size == store.tree_head()[0]
    assert status.to_json() == {"tree_size": status.tree_size, "count": 0, "required": 2,
                                "ok": False, "copies": status.copies, "warnings": [],
                                "message": status.message()}
    assert "Chỉ có 0 bản sao độc lập" in str(status.message())


def test_the_centre_counts_from_its_largest_receipt(store: Store) -> None:
    """Receipts for 3 then 7 entries: the centre holds 7; receipts before ``since`` are not
    read."""
    store.register_incoming(incoming())
    first = _receipt(store, 3)
    _receipt(store, 7)
    assert latest_receipt_size(store) == 7
    assert latest_receipt_size(store, since=first + 1) == 7
    assert latest_receipt_size(store, since=store.tree_head()[0]) == 0
    # A receipt behind the log (3 of its entries, registrations after): not a copy yet.
    store.register_incoming(incoming(CodeNumber="2"))
    behind = independent_copies(store, [], centre_confirmed=3)
    assert behind.copies == [{**CENTRE, "tree_size": 3, "counts": False}]
    assert behind.count == 0
    # A receipt covering every entry (those after it are receipts): now it counts.
    _receipt(store, store.tree_head()[0])
    status = independent_copies(store, [])
    assert status.copies[0]["counts"] and status.count == 1
    # ... unless content files are still waiting to go up.
    assert independent_copies(store, [], centre_confirmed=latest_receipt_size(store),
                              centre_pending_content=3).count == 0


def test_a_medium_counts_up_to_its_newest_set_and_the_two_make_it_ok(
    store: Store, tmp_path: Path
) -> None:
    """A backup set on one medium plus the centre's receipt: two copies, ok; each reports
    how far it reaches."""
    usb = tmp_path / "usb"
    store.register_incoming(incoming())
    made = backup(store, usb, label="USB-01")
    _receipt(store, store.tree_head()[0])
    status = independent_copies(store, [usb])
    medium, centre = status.copies
    assert (medium["kind"], medium["label"], medium["last_set"]) == ("medium", "USB-01",
                                                                    made.set_id)
    assert medium["tree_size"] == made.tree_size > 0 and medium["counts"]
    assert centre == {**CENTRE, "tree_size": status.tree_size - 1, "counts": True}
    assert status.count == 2 and status.ok


def test_a_medium_that_cannot_be_read_counts_for_nothing(store: Store, tmp_path: Path) -> None:
    """A folder that is not a medium, or a medium with no set yet, is listed at size 0 (the
    first with its error) and does not count."""
    empty = tmp_path / "empty"
    empty.mkdir()
    blank = tmp_path / "blank"
    from appliance.archive.medium import open_medium

    open_medium(blank, label="HDD-02", create=True)
    status = independent_copies(store, [empty, blank])
    bad, unused, _ = status.copies
    assert bad["tree_size"] == 0 and "is not a luutru backup medium" in bad["error"]
    life = unused.pop("life")
    assert unused == {"kind": "medium", "label": "HDD-02", "tree_size": 0, "last_set": None,
                      "created": None, "counts": False}
    assert life["rated_years"] is None  # and the status warns that none was recorded
    assert any("HDD-02" in w and "tuổi thọ" in w for w in status.warnings)
    assert status.count == 0
