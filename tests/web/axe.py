"""axe-core (vendored from npm, tests/vendor/axe-core) run inside Debian's Chromium by
Playwright: the WCAG 2.1 A and AA rules axe can check automatically.

The script is added as an init script of the browser context (the DevTools protocol injects
it), so pages keep their own Content-Security-Policy, which allows no script at all."""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

AXE = Path(__file__).resolve().parents[1] / "vendor" / "axe-core" / "axe.min.js"
AXE_SHA256 = "29348999450cdf2849a8e70b7912fc2da85a849da39c0d0d5394f51d4a9ed95c"  # 4.14.1
WCAG21_AA = ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa"]


def axe_source() -> str:
    raw = AXE.read_bytes()
    if hashlib.sha256(raw).hexdigest() != AXE_SHA256:
        raise AssertionError(f"{AXE} is not the vendored axe-core 4.14.1 (see its README)")
    return raw.decode("utf-8")


def violations(page: Any, tags: list[str] = WCAG21_AA) -> list[dict[str, Any]]:
    """The page's axe violations for ``tags``: rule id, impact, and the offending nodes."""
    found: list[dict[str, Any]] = page.evaluate(
        """async (tags) => {
            const r = await axe.run(document, {runOnly: {type: 'tag', values: tags},
                                               resultTypes: ['violations']});
            return r.violations.map(v => ({id: v.id, impact: v.impact, help: v.help,
                nodes: v.nodes.map(n => n.target.join(' ') + ' — ' + n.failureSummary)}));
        }""",
        tags,
    )
    return found
