"""The writer a power-cut test cuts off: a real process that registers documents (every third
with an uploaded scan, stored and attached as the upload handlers do) and prints one line of
JSON per acknowledgement, after the call returned, i.e. after its commit was durable.

    python -m tests.powercut_driver DATA_DIR SEED [COUNT]
"""

from __future__ import annotations

import io
import json
import random
import sys
from pathlib import Path

from appliance.store import Store
from tests.durability import DurabilityTrace


def main(data_dir: Path, seed: int, count: int) -> None:
    rnd = random.Random(seed)
    # Every folder entry it makes must be durable before it acknowledges (tests/durability.py).
    trace = DurabilityTrace(data_dir)
    with Store.open(data_dir) as store:
        print(json.dumps({"ready": True}), flush=True)
        for i in range(count):
            rec = store.register_incoming({
                "TypeName": "Công văn", "CodeNumber": str(seed * 1000 + i + 1),
                "CodeNotation": "UBND-VP", "IssuedDate": "2025-09-03",
                "OrganName": "Sở Nội vụ", "Subject": f"V/v kiểm tra mất điện {seed}-{i}",
                "PageAmount": 1,
            }).record
            ack: dict[str, object] = {"id": rec.id, "number": rec.data["ArrivalNumber"],
                                      "year": rec.data["Year"]}
            if i % 3 == 0:
                body = b"%PDF-1.4\n" + rnd.randbytes(rnd.randint(20_000, 300_000))
                stored = store.content.put_stream(io.BytesIO(body))
                store.attach_content(rec.id, [{"sha256": stored.sha256, "size": stored.size,
                                               "name": f"scan-{i}.pdf",
                                               "mime": "application/pdf"}])
                ack["sha256"] = stored.sha256
            if pending := trace.pending():
                ack["not_durable"] = pending
            print(json.dumps(ack), flush=True)


if __name__ == "__main__":
    main(Path(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3]) if len(sys.argv) > 3 else 10**6)
