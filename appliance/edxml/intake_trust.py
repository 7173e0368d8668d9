"""Changes to the trust store, logged (``edxml.trust``): which CA the box trusts decides
verdicts, so who changed it and when is part of the record."""

from __future__ import annotations

from typing import TYPE_CHECKING

from .. import writes
from ..kinds import Kind
from ..writer import Txn
from .trust import TrustedRoot, TrustStore

if TYPE_CHECKING:
    from ..store import Store


def add_root(store: Store, data: bytes, actor: str) -> list[TrustedRoot]:
    """Trust the CA certificate(s) in ``data`` and log it."""
    added = TrustStore(store.data_dir).add(data)
    def job(txn: Txn) -> None:
        for r in added:
            writes.append_event(
                txn, Kind.EDXML_TRUST, actor,
                {"action": "add", "fingerprint": r.fingerprint, "subject": r.subject,
                 "not_after": r.not_after}, "trust", r.fingerprint)

    store.writer_or_fail().call(job)
    return added


def remove_root(store: Store, fingerprint: str, actor: str) -> TrustedRoot:
    """Stop trusting a CA certificate and log it."""
    removed = TrustStore(store.data_dir).remove(fingerprint)
    store.writer_or_fail().call(lambda txn: writes.append_event(
        txn, Kind.EDXML_TRUST, actor,
        {"action": "remove", "fingerprint": removed.fingerprint, "subject": removed.subject},
        "trust", removed.fingerprint))
    return removed
