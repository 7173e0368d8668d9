"""Routing by a scanned code (appliance/capture/routing.py): a code names a hồ sơ, a document
or a separator; the router holds it for the next batch only, and refuses what is not here.
(The serial reader itself is exercised over a pty in test_folder_serial.py.)"""

from __future__ import annotations

from collections.abc import Callable

import pytest

from appliance.capture.routing import BarcodeRouter, parse_code, store_exists
from appliance.capture.separator import PREFIX, Target
from appliance.store import Store
from tests.conftest import incoming

FILE = "000.21.08.H49.2025.01.VP"
DOC = "3f2b8c1e-0a4d-4e5f-9b6a-1c2d3e4f5a6b"


@pytest.mark.parametrize(
    ("code", "target"),
    [
        (f" {FILE}\r", Target(file_code=FILE)),
        ("000.21.08.H49.2025.01.vp", Target(file_code=FILE)),  # the notation is upper-cased
        (DOC.upper(), Target(document_id=DOC)),
        (f"{PREFIX}G", Target()),
        (f"{PREFIX}D:{DOC}", Target(document_id=DOC)),
    ],
)
def test_codes_name_their_target(code: str, target: Target) -> None:
    """A mã hồ sơ, a document id (any case) or one of our separator payloads."""
    assert parse_code(code) == target


@pytest.mark.parametrize(
    "code",
    ["8934567890123", "000.21.08.H49.2025", "000.21.08.H49.25.01.VP", DOC[:-1], "", "   ",
     f"{PREFIX}F:"],
    ids=["ean-13", "no-notation", "two-digit-year", "short-uuid", "empty", "blank",
         "empty-separator"],
)
def test_other_codes_name_nothing(code: str) -> None:
    """Product barcodes and malformed codes route nowhere."""
    assert parse_code(code) is None


def test_the_next_batch_only_goes_where_the_last_code_said() -> None:
    """feed sets the target, peek shows it, take hands it out once; a later code wins."""
    router = BarcodeRouter()
    assert router.peek() is None and router.take() is None
    assert router.feed(FILE).message == f"the next batch goes to hồ sơ {FILE}"
    route = router.feed(DOC)
    assert route.target == Target(document_id=DOC) and router.peek() == route.target
    assert router.take() == Target(document_id=DOC)
    assert router.take() is None


def test_an_unreadable_code_leaves_the_target_as_it_was() -> None:
    """A bad scan says so and does not clear what an earlier code set."""
    router = BarcodeRouter()
    router.feed(FILE)
    bad = router.feed("xyz")
    assert bad.target is None and "'xyz' is not a mã hồ sơ, document or separator" in bad.message
    assert router.peek() == Target(file_code=FILE)


def test_targets_must_exist_in_the_store(store: Store) -> None:
    """With store_exists, a hồ sơ or document this appliance does not hold is refused; the
    generic separator needs no check."""
    checks: list[Target] = []
    exists: Callable[[Target], bool] = store_exists(store)

    def counted(t: Target) -> bool:
        checks.append(t)
        return exists(t)

    router = BarcodeRouter(counted)
    doc = store.register_incoming(incoming()).record
    f = store.open_file({"FileCatalog": 2025, "FileNotation": "01.VP", "Title": "Hồ sơ",
                         "Maintenance": "01"})
    missing = router.feed("000.21.08.H49.2099.09.XX")
    assert missing.target is None and missing.message.endswith("does not exist here")
    assert router.feed(doc.id).target == Target(document_id=doc.id)
    assert router.feed(str(f.data["FileCode"])).target == Target(file_code=f.data["FileCode"])
    assert router.feed(DOC).target is None
    assert router.feed(f"{PREFIX}G").target == Target()
    assert Target() not in checks and len(checks) == 4
