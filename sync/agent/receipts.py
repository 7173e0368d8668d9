"""Receipts on the appliance: check a centre's cosignature and keep it in the log.

A receipt counts only if the pinned centre key signed it, the checkpoint inside is this
appliance's own (its device key's signature, its origin) and that checkpoint's root is this
log's root at that size. It is then appended as a ``sync.receipt`` entry; the entry is what
makes each record show "copy confirmed at the province".
"""

from __future__ import annotations

from dataclasses import dataclass

from appliance import writes
from appliance.checkpoint import verify_checkpoint
from appliance.errors import EncodingError, SignatureError
from appliance.keys.verify import PublicKey, load_public_key
from appliance.ledger import Entry
from appliance.store import Store, Txn

from .. import wire
from ..errors import AuthError
from .outbox import RECEIPT_KIND


@dataclass(frozen=True)
class CheckedReceipt:
    raw: bytes
    receipt: wire.Receipt


def check_receipt(raw: bytes, centre_key: PublicKey, store: Store) -> CheckedReceipt:
    """Return the receipt if it is the centre's cosignature of this log's own checkpoint."""
    rc = wire.verify_receipt(raw, centre_key)
    device = load_public_key(store.key.public_key_pem()) if store.key else None
    if device is None:
        from appliance.datadir import PUBLIC_KEY_NAME

        device = load_public_key((store.data_dir / PUBLIC_KEY_NAME).read_text())
    try:
        cp = verify_checkpoint(rc.checkpoint, device)
    except (SignatureError, EncodingError) as exc:
        raise AuthError(f"the receipt's checkpoint is not this appliance's: {exc}") from exc
    if cp.origin != store.config.origin or cp.tree_size != rc.tree_size:
        raise AuthError("the receipt is for another log or another size")
    if cp.root_hash != rc.root_hash:
        raise AuthError("the receipt's root differs from its checkpoint's")
    size, _ = store.tree_head()
    if rc.tree_size > size:
        raise AuthError(f"the receipt covers {rc.tree_size} entries; this log has {size}")
    if store.root_at(rc.tree_size) != rc.root_hash:
        raise AuthError(f"this log's root at size {rc.tree_size} is not the one receipted")
    return CheckedReceipt(raw, rc)


def store_receipt(store: Store, checked: CheckedReceipt, centre: str) -> int | None:
    """Append the receipt as a log entry unless one for that size is already there."""
    rc = checked.receipt

    def job(txn: Txn) -> int | None:
        for (raw,) in txn.conn.execute(
            "SELECT entry FROM log WHERE idx >= ? AND length(entry) > 0 ORDER BY idx",
            (rc.tree_size,),
        ):
            e = Entry.decode(bytes(raw), strict=False)
            if e.kind == RECEIPT_KIND and e.data and e.data.get("tree_size") == rc.tree_size:
                return None
        entry = writes.append_event(
            txn,
            RECEIPT_KIND,
            "sync",
            {
                "centre": centre,
                "witness": rc.witness,
                "tree_size": rc.tree_size,
                "root_hash": rc.root_hash.hex(),
                "accepted_at": rc.accepted_at,
                "receipt": wire.b64(checked.raw),
            },
        )
        return entry.index

    return store.writer_or_fail().call(job)
