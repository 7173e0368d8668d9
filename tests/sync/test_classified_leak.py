"""Random histories with mật documents and hồ sơ mixed into ordinary ones, synced by the real
`luutru sync` to a real `luutru central serve`: not one byte of a classified record reaches the
centre's folder (database, write-ahead log, blobs, uploads)."""

from __future__ import annotations

import json
import random
from pathlib import Path

import pytest

from appliance import classified
from appliance.store import Store
from appliance.text import fold
from tests.conftest import incoming, outgoing
from tests.sync.procs import CentreServer, new_appliance, receipt_sizes, run, token

pytestmark = pytest.mark.slow

WORDS = ("đê điều", "quốc phòng", "biên giới", "kho vũ khí", "tần số vô tuyến", "mật mã",
         "địa điểm diễn tập", "kế hoạch tác chiến", "dự trữ xăng dầu", "cán bộ chủ chốt")


def _history(store: Store, rng: random.Random, n: int) -> None:
    """``n`` random steps: registrations, drafts, hồ sơ (some mật) opened, filed, shared,
    closed, content attached, edits and reads, mật and ordinary records mixed."""
    files: list[str] = []
    docs: list[str] = []
    serial = iter(range(10_000))

    def subject(secret: bool) -> str:
        w = rng.choice(WORDS)
        return f"V/v {w} {'(MẬT) ' if secret else ''}số {next(serial)} — {rng.randrange(10**9)}"

    for _ in range(n):
        op = rng.choice(("reg", "reg", "reg", "draft", "file", "file_into", "share", "close",
                         "content", "edit", "view"))
        secret = rng.random() < 0.3
        try:
            if op in ("reg", "file_into") or not docs:
                over: dict[str, object] = {"CodeNumber": str(next(serial) + 1),
                                           "Subject": subject(secret)}
                if secret:
                    over["Mode"] = "03"
                if op == "file_into" and files:
                    over["FileCode"] = rng.choice(files)
                docs.append(store.register_incoming(incoming(**over)).record.id)
            elif op == "draft":
                over = {"Subject": subject(secret)}
                if secret:
                    over["Mode"] = "03"
                docs.append(store.draft_outgoing(outgoing(**over)).record.id)
            elif op == "file":
                fields = {"FileCatalog": 2025, "FileNotation": f"{next(serial):02d}.VP",
                          "Title": f"Hồ sơ {subject(secret)}", "Maintenance": "05",
                          "Description": f"Ghi chú {subject(secret)}"}
                if secret:
                    fields["Rights"] = "03"
                files.append(store.open_file(fields).data["FileCode"])
            elif op == "share" and files:
                store.add_to_file(rng.choice(docs), rng.choice(files))
            elif op == "close" and files:
                store.close_file(files.pop(rng.randrange(len(files))))
            elif op == "content":
                c = store.content.put_bytes(rng.randbytes(rng.randrange(300, 3000)))
                store.attach_content(rng.choice(docs), [
                    {"sha256": c.sha256, "size": c.size, "name": "scan.pdf"}])
            elif op == "edit":
                store.update_document(rng.choice(docs), {"Keyword": subject(secret)})
            elif op == "view":
                store.audit("view", "vanthu", "document", rng.choice(docs), {"via": "web"})
        except Exception as exc:  # a refused step (closed hồ sơ, already filed) is fine
            from appliance.errors import LuutruError

            if not isinstance(exc, LuutruError):
                raise
    store.wait_sealed()


def _needles(data_dir: Path) -> list[bytes]:
    """Every subject, title, note, keyword, id, mã hồ sơ and content hash of a classified
    record, as bytes (UTF-8, folded as the centre's search would index it, raw hashes)."""
    with Store.open(data_dir, readonly=True) as s:
        conn = s.reader()
        cs = classified.load(conn)
        texts: list[str] = []
        for table, cols in (("files", '"Title", "Description"'),
                            ("documents", '"Subject", "Keyword"')):
            for row in conn.execute(f"SELECT id, {cols} FROM {table}"):
                if row[0] in cs.ids:
                    texts += [str(v) for v in row[1:] if v]
    out: list[bytes] = []
    for t in texts:
        out += [t.encode(), fold(t).encode()]
    out += [i.encode() for i in cs.ids] + [c.encode() for c in cs.file_codes]
    for sha in cs.content:
        out += [sha.encode(), bytes.fromhex(sha)]
    return out


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_random_histories_leave_no_classified_trace_at_the_centre(
    tmp_path: Path, seed: int
) -> None:
    """Each history is synced in several rounds (a round after every part of it), then every
    file under the centre's folder is searched for every classified needle: none is found,
    while ordinary records did arrive."""
    rng = random.Random(seed)
    centre = tmp_path / "centre"
    run("central", "init", "--data", str(centre))
    with CentreServer(centre) as srv:
        d = new_appliance(tmp_path / "app")
        run("enrol", "--data", str(d), "--centre", srv.url, "--token", token(centre))
        for _ in range(3):
            with Store.open(d) as store:
                _history(store, rng, 30)
            rep = json.loads(run("sync", "--data", str(d), "--once", "--json").stdout)
            assert rep["withheld_sent"] >= 0
        needles = _needles(d)
    assert len(needles) > 20
    assert receipt_sizes(d), "the centre countersigned nothing"
    scanned = 0
    for f in centre.rglob("*"):
        if not f.is_file():
            continue
        raw = f.read_bytes()
        scanned += len(raw)
        hits = [n for n in needles if n in raw]
        assert not hits, f"{f.relative_to(centre)} holds {hits[:3]}"
    # Ordinary records did reach the centre (the scan looked at real data).
    with Store.open(d, readonly=True) as s:
        secret = classified.load(s.reader()).ids
        public = [r[1] for r in s.reader().execute('SELECT id, "Subject" FROM documents')
                  if r[0] not in secret]
    db = b"".join(f.read_bytes() for f in centre.rglob("centre.db*"))
    assert public and all(p.encode() in db for p in public)
    assert scanned > 0
