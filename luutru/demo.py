"""The embedded default: a demo commune with the bundled sample registers."""

from __future__ import annotations

from collections.abc import Iterator
from importlib import resources
from pathlib import Path

from appliance import fileplan
from appliance.config import CONFIG_NAME
from appliance.datadir import init_data_dir
from appliance.importer import import_file, report_lines
from appliance.store import Store

DEMO_ORG_ID = "000.21.08.H49"
DEMO_ORG_NAME = "Ủy ban nhân dân xã Đông Hải"
CLOSED_FOND = "000.21.07.H49"
DEMO_HEADINGS = ("I. Công tác tổng hợp, văn phòng | VP\nII. Tài chính - ngân sách | TC\n"
                 "III. Đất đai, nông nghiệp và môi trường | ĐC\nIV. Tư pháp - hộ tịch | TP\n"
                 "V. Văn hóa - xã hội | VHXH\n")
SAMPLES = (
    ("registers.jsonl", None),
    ("so-den-2024.csv", CLOSED_FOND),
    ("so-di-2024.csv", CLOSED_FOND),
)


def ensure_demo(data_dir: Path) -> Iterator[str]:
    """Create and fill ``data_dir`` unless it already holds a data folder; say what was done."""
    yield from _ensure_records(data_dir)
    # The web UI's first sign-in: users are created once, their passwords printed once.
    from web_ui.setup import ensure_first_users

    yield from ensure_first_users(data_dir)


def _ensure_records(data_dir: Path) -> Iterator[str]:
    if (data_dir / CONFIG_NAME).exists():
        with Store.open(data_dir, readonly=True) as store:
            n = store.count("document")
            size, _ = store.tree_head()
        yield f"{data_dir} already exists: {n} documents, {size} log entries; nothing changed"
        return
    res = init_data_dir(data_dir, DEMO_ORG_ID, DEMO_ORG_NAME, "software")
    yield f"created {data_dir} for {DEMO_ORG_NAME} ({DEMO_ORG_ID})"
    yield (f"device key: SOFTWARE Ed25519 {res.kid} (no TPM: shown as such everywhere)")
    sample = resources.files("appliance").joinpath("data/sample")
    with Store.open(data_dir) as store:
        for name, fond in SAMPLES:
            with resources.as_file(sample.joinpath(name)) as path:
                report = import_file(store, Path(path), actor=f"demo:{name}", fond=fond)
            yield (
                f"imported {name}: {report.imported} records"
                + (f", {len(report.failed)} refused" if report.failed else "")
            )
            yield from ("  " + line for line in report_lines(report))
        years = sorted({2025, 2026, store.clock.now().year})
        for year in years:  # the sample's headings, as the commune's Danh mục structure
            fileplan.set_headings(store, year, fileplan.parse_text(DEMO_HEADINGS), "demo")
        yield f"Danh mục hồ sơ headings for {', '.join(map(str, years))}"
        store.wait_sealed()
        size, root = store.tree_head()
        yield f"sealed log: {size} entries, root {root.hex()}"
