"""The centre's storage seam, method by method, on SQLite and on PostgreSQL alike.

Intake, uploads, purge and the dashboard reach most of these through their own tests; this
module pins what each method of ``CentreView`` / ``CentreTx`` returns, including the corners
(limits of 0, rows written twice, blobs no one references) where two backends could drift.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from sync.central.open import open_storage
from sync.central.storage import (
    AnomalyKind,
    ApplianceCounts,
    ApplianceRecord,
    ApplianceStatus,
    CentreStorage,
    CheckpointRecord,
    ContentRef,
    DocumentRow,
    EntryRow,
    ForkEvidence,
    KeyRecord,
    ParkedBatch,
    ReplacementRecord,
    TokenRecord,
)

A, B = "aa" * 16, "bb" * 16
T0, T1, T2 = "2025-09-15T09:30:00+07:00", "2025-09-15T09:31:00+07:00", "2025-09-15T09:32:00+07:00"


@pytest.fixture(params=["sqlite", "postgresql"])
def storage(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[CentreStorage]:
    url = request.getfixturevalue("pg_url") if request.param == "postgresql" else "sqlite:c.db"
    s = open_storage(url, tmp_path)
    yield s
    s.close()


def _app(app_id: str, org: str = "000.21.08.H49") -> ApplianceRecord:
    return ApplianceRecord(app_id, org, "Xã Đông Hải", "origin/" + app_id[:4], "PEM-" + app_id,
                           "software", -8, T0)


def _doc(doc_id: str, folded: str, *, app: str = A, org: str = "org1", version: int = 1,
         log_index: int = 0, year: int | None = 2025) -> DocumentRow:
    return DocumentRow(app, org, doc_id, version, log_index, "incoming", "Công văn", "12",
                       "UBND", "Ủy ban", folded, "2025-09-01", None, None, year, None, folded,
                       f'{{"v": {version}}}')


def _with_two_appliances(s: CentreStorage) -> None:
    with s.transaction() as tx:
        tx.add_appliance(_app(B, "org2"))
        tx.add_appliance(_app(A))


def test_appliances_round_trip_every_field(storage: CentreStorage) -> None:
    """What add_appliance and the setters write is what appliance()/appliances() read."""
    _with_two_appliances(storage)
    frontier = (b"\x01" * 32, b"\x02" * 32)
    with storage.transaction() as tx:
        tx.set_accepted(A, 5, b"\x09" * 32, frontier, 2)
        tx.set_seq(A, 7)
        tx.touch(A, T1)
        tx.set_claim(A, 9, T2)
        tx.set_status(A, ApplianceStatus.QUARANTINED)
    with storage.view() as v:
        assert v.appliance("cc" * 16) is None
        assert [a.id for a in v.appliances()] == [A, B]  # by organisation, then id
        assert v.appliance(B) == _app(B, "org2")
        assert v.appliance(A) == ApplianceRecord(
            A, "000.21.08.H49", "Xã Đông Hải", "origin/aaaa", "PEM-" + A, "software", -8, T0,
            ApplianceStatus.QUARANTINED, 5, b"\x09" * 32, frontier, 7, T1, 9, T2, 2,
        )


def test_a_hand_over_key_finds_its_log_and_restarts_the_sequence(storage: CentreStorage) -> None:
    """rekey records the key, makes it current and resets last_seq; either key finds the log,
    a hand-over key even when it was also enrolled as an appliance of its own."""
    _with_two_appliances(storage)
    new = "dd" * 16
    with storage.transaction() as tx:
        tx.set_seq(A, 40)
        tx.rekey(KeyRecord(A, "ee" * 16, "PEM-e", "tpm", -7, 3, T1))
        tx.rekey(KeyRecord(A, new, "PEM-d", "tpm", -7, 10, T2))
    with storage.view() as v:
        assert [k.key_id for k in v.keys(A)] == ["ee" * 16, new]  # oldest hand-over first
        assert v.keys(A)[1] == KeyRecord(A, new, "PEM-d", "tpm", -7, 10, T2)
        rec = v.appliance_for_key(new)
        assert rec is not None and rec.id == A and rec.public_key_pem == "PEM-d"
        assert rec.last_seq == 0 and rec.alg == -7
        assert v.appliance_for_key(A) == rec
        assert v.appliance_for_key("ff" * 16) is None
        assert v.keys(B) == []
    with storage.transaction() as tx:  # the new box later enrolled on its own as well
        tx.add_appliance(_app(new))
    with storage.view() as v:
        found = v.appliance_for_key(new)
        assert found is not None and found.id == A  # the log its key signs wins


def test_tokens_and_replacements_round_trip(storage: CentreStorage) -> None:
    """A token is stored, used once; a replacement is started, bound to a key and completed."""
    _with_two_appliances(storage)
    tok = TokenRecord(b"\x01" * 16, b"\x02" * 32, "org1", T0, T2)
    with storage.transaction() as tx:
        tx.add_token(tok)
        tx.add_replacement(ReplacementRecord(tok.token_id, A, T0))
    with storage.view() as v:
        assert v.token(tok.token_id) == tok
        assert v.token(b"\x03" * 16) is None
        assert v.replacement(tok.token_id) == ReplacementRecord(tok.token_id, A, T0)
        assert v.replacement_for_key("dd" * 16) is None
    with storage.transaction() as tx:
        tx.use_token(tok.token_id, "dd" * 16, T1)
        tx.start_replacement(tok.token_id, "dd" * 16, T1)
        tx.complete_replacement(tok.token_id, 12, T2)
    done = ReplacementRecord(tok.token_id, A, T0, "dd" * 16, T1, T2, 12)
    with storage.view() as v:
        assert v.token(tok.token_id) == TokenRecord(
            tok.token_id, tok.secret, "org1", T0, T2, "dd" * 16, T1
        )
        assert v.replacement(tok.token_id) == done
        assert v.replacement_for_key("dd" * 16) == done
        assert v.replacement(b"\x04" * 16) is None


def test_entries_leaves_and_checkpoints(storage: CentreStorage) -> None:
    """Entries read back by range (withheld ones as None); a checkpoint stored twice is kept
    once; at_or_below finds the largest size not above the one asked."""
    _with_two_appliances(storage)
    rows = [EntryRow(i, bytes([i]) * 32, None if i == 2 else b"entry%d" % i) for i in range(5)]
    cps = [
        CheckpointRecord(A, n, bytes([n]) * 32, b"cose%d" % n, (bytes([n]) * 32,), T1, b"rcpt")
        for n in (2, 5)
    ]
    with storage.transaction() as tx:
        tx.add_entries(A, rows)
        tx.add_entries(B, [])
        for cp in cps:
            tx.add_checkpoint(cp)
        tx.add_checkpoint(cps[0])  # the same checkpoint again: ignored
    with storage.view() as v:
        assert v.entries(A, 0, 1 << 63) == rows
        assert v.entries(A, 1, 3) == rows[1:3]
        assert v.entries(B, 0, 10) == []
        assert v.leaves(A, 2, 10) == [r.leaf_hash for r in rows[2:]]
        assert v.checkpoint(A, 5) == cps[1]
        assert v.checkpoint(A, 4) is None
        assert v.checkpoint_at_or_below(A, 4) == cps[0]
        assert v.checkpoint_at_or_below(A, 1) is None
        assert v.checkpoint_at_or_below(A, 99) == cps[1]


def test_responses_are_replaced_and_nonces_kept_once(storage: CentreStorage) -> None:
    """remember_response keeps the latest answer to a request; a nonce added twice is one."""
    _with_two_appliances(storage)
    with storage.transaction() as tx:
        tx.remember_response(A, b"d" * 32, b"first", T0)
        tx.remember_response(A, b"d" * 32, b"second", T1)
        tx.add_nonce(A, b"n" * 16, T0)
        tx.add_nonce(A, b"n" * 16, T1)
    with storage.view() as v:
        assert v.response_for(A, b"d" * 32) == b"second"
        assert v.response_for(B, b"d" * 32) is None
        assert v.nonce_seen(A, b"n" * 16) and not v.nonce_seen(B, b"n" * 16)


def test_content_refs_blobs_and_counts(storage: CentreStorage) -> None:
    """A size learnt later fills an unknown one and never overwrites a known one; missing
    content is listed up to the limit and counted in full; counts agree with all_counts."""
    _with_two_appliances(storage)
    s1, s2, s3 = "1" * 64, "2" * 64, "3" * 64
    with storage.transaction() as tx:
        tx.add_entries(A, [EntryRow(i, bytes([i]) * 32, b"e") for i in range(3)])
        tx.add_content_refs(A, [ContentRef(s1, -1, 0), ContentRef(s2, 10, 1)])
        tx.add_content_refs(A, [ContentRef(s1, 20, 2), ContentRef(s2, 99, 2)])
        tx.add_content_refs(A, [ContentRef(s3, 30, 2)])
        tx.add_content_refs(B, [ContentRef(s1, 20, 0)])
        tx.add_content_refs(B, [])
        tx.record_blob(s2, 10, T0)
        tx.record_blob(s2, 10, T1)  # again: ignored
        tx.upsert_documents([_doc("d1", "van ban")])
    with storage.view() as v:
        assert v.content_expected(A, s1) == ContentRef(s1, 20, 0)
        assert v.content_expected(A, s2) == ContentRef(s2, 10, 1)
        assert v.content_expected(B, s3) is None
        assert v.blob_recorded(s2) and not v.blob_recorded(s1)
        assert v.missing_content(A, 10) == ([ContentRef(s1, 20, 0), ContentRef(s3, 30, 2)], 2)
        assert v.missing_content(A, 1) == ([ContentRef(s1, 20, 0)], 2)
        assert v.missing_content(A, 0) == ([], 2)
        assert v.missing_content(A, -1) == ([], 2)
        assert v.counts(A) == ApplianceCounts(3, 1, 3, 2)
        assert v.counts("cc" * 16) == ApplianceCounts(0, 0, 0, 0)
        assert v.all_counts() == {A: v.counts(A), B: ApplianceCounts(0, 0, 1, 1)}


def test_documents_keep_their_newest_version_and_search_finds_them(
    storage: CentreStorage,
) -> None:
    """An older version never overwrites a newer one (within one call or across calls);
    search matches all words, the last as a prefix unless a space follows, filters by
    organisation, and orders by organisation, year (unknown last) and log index."""
    _with_two_appliances(storage)
    with storage.transaction() as tx:
        tx.upsert_documents([
            _doc("d1", "quyet dinh giao dat v2", version=2, log_index=4),
            _doc("d1", "quyet dinh giao dat v1", version=1, log_index=1),
            _doc("d2", "cong van ve giao thong", log_index=2, year=None),
            _doc("d3", "quyet dinh khen thuong", log_index=3, year=2024),
            _doc("d4", "quyet dinh giao dat", app=B, org="org0", log_index=9),
        ])
        tx.upsert_documents([_doc("d3", "quyet dinh cu", version=0)])
    with storage.view() as v:
        d1 = [d for d in v.search_documents("giao dat v2") if d.doc_id == "d1"]
        assert len(d1) == 1 and d1[0].version == 2 and d1[0].data_json == '{"v": 2}'
        assert v.search_documents("giao dat v1") == []
        assert [d.doc_id for d in v.search_documents("quyet dinh")] == ["d4", "d1", "d3"]
        assert [d.doc_id for d in v.search_documents("quyet dinh", org_id="org1")] == [
            "d1", "d3"
        ]
        assert [d.doc_id for d in v.search_documents("", org_id="org1")] == ["d1", "d3", "d2"]
        assert [d.doc_id for d in v.search_documents("giao th")] == ["d2"]  # a prefix
        assert v.search_documents("giao th ") == []  # whole words only
        assert len(v.search_documents("quyet", limit=2)) == 2
        assert v.search_documents("khong co") == []
        assert v.search_documents("\"'); drop table documents; --*") == []
        assert v.search_documents("khen") == [_doc("d3", "quyet dinh khen thuong",
                                                   log_index=3, year=2024)]


def test_anomalies_alerts_forks_and_parked_batches(storage: CentreStorage) -> None:
    """Anomalies count per kind (unknown keys under None); alerts get rising ids and clear
    per appliance; forks keep their evidence; a batch parked twice is parked once."""
    _with_two_appliances(storage)
    fork = ForkEvidence(A, T1, 3, b"cp-a", 4, b"cp-b", 2, b"request", "different root")
    with storage.transaction() as tx:
        tx.record_anomaly(A, AnomalyKind.REPLAY, "first", T0)
        tx.record_anomaly(A, AnomalyKind.REPLAY, "second", T2)
        tx.record_anomaly(None, AnomalyKind.UNKNOWN_KEY, "who", T1)
        ids = [tx.raise_alert(A, "fork", "x", T0), tx.raise_alert(B, "clock", "y", T1)]
        tx.add_fork(fork)
        tx.add_fork(ForkEvidence(A, T2, 3, b"cp-a", 5, b"cp-c", None, b"r2", "again"))
        for start, digest in ((4, b"2"), (2, b"1"), (2, b"1")):
            tx.park(ParkedBatch(A, start, start + 2, digest * 32, b"raw" + digest, T0))
    assert ids[1] > ids[0] > 0
    with storage.view() as v:
        got = v.anomalies()
        assert [(a.appliance_id, a.kind, a.detail, a.first_at, a.last_at, a.count)
                for a in got] == [(A, AnomalyKind.REPLAY, "second", T0, T2, 2),
                                  (None, AnomalyKind.UNKNOWN_KEY, "who", T1, T1, 1)]
        assert [a.kind for a in v.anomalies(A)] == [AnomalyKind.REPLAY]
        assert [a.id for a in v.alerts()] == [ids[1], ids[0]]  # newest first
        assert v.forks(A)[0] == fork and v.forks(A)[1].diverge_index is None
        assert v.forks(B) == []
        assert [(p.start, p.raw) for p in v.parked(A)] == [(2, b"raw1"), (4, b"raw2")]
    with storage.transaction() as tx:
        assert tx.clear_alerts(A, "admin", T2) == 1
        assert tx.clear_alerts(A, "admin", T2) == 0
        tx.unpark(A, b"1" * 32)
    with storage.view() as v:
        assert [a.id for a in v.alerts()] == [ids[1]]
        cleared = [a for a in v.alerts(open_only=False) if a.id == ids[0]]
        assert cleared[0].cleared_at == T2 and cleared[0].cleared_by == "admin"
        assert [p.start for p in v.parked(A)] == [4]


def test_truncate_moves_entries_aside_and_drops_what_they_made(storage: CentreStorage) -> None:
    """Entries at and above the size leave (counted), later checkpoints are superseded, their
    documents and content references go and their ids are returned for re-projection."""
    _with_two_appliances(storage)
    cps = [CheckpointRecord(A, n, bytes([n]) * 32, b"c", (), T0, b"r") for n in (2, 4)]
    with storage.transaction() as tx:
        tx.add_entries(A, [EntryRow(i, bytes([i]) * 32, b"e%d" % i) for i in range(4)])
        for cp in cps:
            tx.add_checkpoint(cp)
        tx.upsert_documents([_doc("old", "cu", log_index=1), _doc("x", "moi", log_index=2),
                             _doc("y", "moi", log_index=3)])
        tx.add_content_refs(A, [ContentRef("1" * 64, 5, 1), ContentRef("2" * 64, 5, 3)])
    with storage.transaction() as tx:
        moved, docs = tx.truncate(A, 2, T1)
    assert moved == 2 and sorted(docs) == ["x", "y"]
    with storage.view() as v:
        assert [r.index for r in v.entries(A, 0, 10)] == [0, 1]
        assert v.checkpoint(A, 4) is None and v.checkpoint(A, 2) == cps[0]
        assert [d.doc_id for d in v.search_documents("")] == ["old"]
        assert v.missing_content(A, 10)[0] == [ContentRef("1" * 64, 5, 1)]


def test_withheld_entries_keep_their_leaves_and_lose_everything_else(
    storage: CentreStorage,
) -> None:
    """Bodies nulled (held and superseded), documents and their references removed, parked
    requests and fork evidence emptied; a blob someone else references stays, the others are
    returned in the order given, recorded or not."""
    _with_two_appliances(storage)
    secret, shared, unrecorded = "5" * 64, "6" * 64, "7" * 64
    with storage.transaction() as tx:
        tx.add_entries(A, [EntryRow(i, bytes([i]) * 32, b"e%d" % i) for i in range(4)])
        tx.truncate(A, 3, T0)  # entry 3 now superseded evidence
        tx.add_entries(A, [EntryRow(3, b"\x03" * 32, b"e3")])
        tx.upsert_documents([_doc("m", "mat", log_index=1), _doc("p", "thuong", log_index=2)])
        tx.add_content_refs(A, [ContentRef(s, 5, 1) for s in (secret, shared, unrecorded)])
        tx.add_content_refs(B, [ContentRef(shared, 5, 0)])
        tx.record_blob(secret, 5, T0)
        tx.record_blob(shared, 5, T0)
        tx.park(ParkedBatch(A, 9, 10, b"p" * 32, b"raw", T0))
        tx.add_fork(ForkEvidence(A, T1, 3, b"a", 4, b"b", 2, b"request with e1", "r"))
    with storage.transaction() as tx:
        docs, gone = tx.withhold_entries(A, [1, 3], ["m", "nope"],
                                         [unrecorded, secret, shared])
    assert docs == 1 and gone == [unrecorded, secret]
    with storage.view() as v:
        assert [r.entry for r in v.entries(A, 0, 10)] == [b"e0", None, b"e2", None]
        assert [d.doc_id for d in v.search_documents("")] == ["p"]
        assert v.content_expected(A, secret) is None and v.content_expected(B, shared)
        assert not v.blob_recorded(secret) and v.blob_recorded(shared)
        assert v.parked(A) == [] and v.forks(A)[0].request == b""
        rec = v.appliance(A)
        assert rec is not None and rec.withheld == 2
    with storage.transaction() as tx:
        assert tx.withhold_entries(A, [], [], []) == (0, [])
    storage.compact()


def test_a_failed_transaction_writes_nothing_and_a_view_is_a_snapshot(
    storage: CentreStorage,
) -> None:
    """An exception rolls the whole transaction back; an open view does not see a commit
    made after its first read."""
    with pytest.raises(RuntimeError), storage.transaction() as tx:
        tx.add_appliance(_app(A))
        raise RuntimeError("abandon")
    with storage.view() as v:
        assert v.appliances() == []
        with storage.transaction() as tx:
            tx.add_appliance(_app(B))
        assert v.appliances() == []
    with storage.view() as v:
        assert [a.id for a in v.appliances()] == [B]
