"""Storage on the device page: used, the rate, days left, what masters would cost."""

from __future__ import annotations

import os
import time
from collections.abc import Callable

from appliance import versions
from appliance.capacity import DAY, capacity, page_sizes
from appliance.capture.filing import content_ref
from appliance.clock import SystemClock
from appliance.store import Store
from tests.conftest import incoming


def test_rate_days_left_and_masters(open_store: Callable[..., Store]) -> None:
    """Content written in the window sets the rate; days left = free space / rate; a released
    lossless scan counts towards what masters would cost; old files do not count."""
    store = open_store(clock=SystemClock())
    raw = store.content.put_bytes(b"r" * 900_000)
    doc = store.register_incoming(incoming(Content=[content_ref(raw.sha256, raw.size, "s.pdf")]))
    small = store.content.put_bytes(b"a" * 100_000)
    versions.add_version(store, doc.record.id, content_ref(small.sha256, small.size, "a.pdf"),
                         raw.sha256, keep_source=versions.KEEP_NONE)
    store.content.release(raw.sha256)
    old = store.content.put_bytes(b"o" * 50_000)
    long_ago = time.time() - 400 * DAY
    os.utime(store.content.path(old.sha256), (long_ago, long_ago))
    store.wait_sealed()
    cap = capacity(store.data_dir, "off", now=time.time())
    assert cap.content_bytes >= 150_000
    assert cap.window_days == 30
    assert abs(cap.per_day - 100_000 / 30) < 1
    assert cap.days_left is not None and abs(cap.days_left - cap.disk_free / cap.per_day) < 1e-6
    assert cap.masters_per_day == 900_000 / 30
    assert cap.days_left_with_masters is not None and cap.days_left_with_masters < cap.days_left


def test_page_sizes_add_up_to_the_file() -> None:
    """Each page's images and content, plus an equal share of the rest, sum to the file."""
    from tests.web import samples

    data = samples.pdf(pages=3)
    sizes = page_sizes(data)
    assert len(sizes) == 3 and sum(sizes) == len(data)
