"""Run the E-ARK validator (eark-validator 1.1.3, CSIP/SIP V2.1.0) exactly as the house runs it.

``../shared/tools/eark-validate -r -c FOLDER`` with the Python of ``.venv-eark`` (bootstrap.sh
makes it: eark-validator 1.1.3 pins lxml==5.1.0, which pyHanko cannot share). The wrapper
serves the four CSIP vocabularies offline. Its report (JSON, last line of stdout) gives the
structure check, the METS schema check and the schematron results of CSIP and SIP.

One schematron error cannot be avoided by any package whose METS is valid against the METS
schema: SIP14 as eark-validator 1.1.3 writes it tests ``@NOTETYPE`` (no namespace) on every
note of every ``ROLE="CREATOR"`` agent, while CSIP10–16 require a CREATOR software agent with
exactly one note typed ``@csip:NOTETYPE="SOFTWARE VERSION"``, and the METS schema allows no
un-namespaced attribute on a note (``anyAttribute namespace="##other"``). The SIP profile's own
XPath for SIP14 is ``metsHdr/agent/note/@csip:NOTETYPE`` (E-ARK-SIP-v2-1-0.xml). That one
error, on the software agent's note and nowhere else, is ``KNOWN_FALSE_POSITIVE``;
``test_sip14_cannot_be_met_by_a_schema_valid_mets`` proves it on our own package.
"""

from __future__ import annotations

import json
import subprocess
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tests.conftest import SHARED

ROOT = Path(__file__).resolve().parents[2]
WRAPPER = SHARED / "tools" / "eark-validate"
PYTHON = ROOT / ".venv-eark" / "bin" / "python"
VERSION = "1.1.3"
# (rule, where): SIP14 on the note of the first agent, the CSIP software agent.
KNOWN_FALSE_POSITIVE = ("SIP14", "/*[local-name()='agent' and namespace-uri()="
                        "'http://www.loc.gov/METS/'][1]/*[local-name()='note'")


def available() -> bool:
    return WRAPPER.is_file() and PYTHON.is_file()


def installed_version() -> str:
    out = subprocess.run([str(PYTHON), "-c", "import importlib.metadata as m; "
                          "print(m.version('eark-validator'))"],
                         capture_output=True, text=True, timeout=60, check=True)
    return out.stdout.strip()


@dataclass
class Report:
    """The validator's verdict, the parts a test looks at."""

    raw: dict[str, Any]
    structure: str = ""
    schema: str = ""
    schematron: str = ""
    errors: list[dict[str, str]] = field(default_factory=list)
    warnings: list[dict[str, str]] = field(default_factory=list)

    def unexpected_errors(self) -> list[dict[str, str]]:
        """Every error but the validator's own SIP14 contradiction (see the module doc)."""
        rule, where = KNOWN_FALSE_POSITIVE
        return [e for e in self.errors
                if not (e["rule_id"] == rule and where in e["location"])]

    def summary(self) -> list[str]:
        return [f"{m['severity']} {m['rule_id']}: {m['message'][:120]} @ {m['location'][:160]}"
                for m in self.errors + self.warnings]


def run(folder: Path) -> Report:
    """``eark-validate -r -c FOLDER`` and its parsed report."""
    proc = subprocess.run([str(PYTHON), str(WRAPPER), "-r", "-c", str(folder)],
                          capture_output=True, text=True, timeout=300)
    lines = [ln for ln in proc.stdout.splitlines() if ln.startswith("{")]
    assert proc.returncode == 0 and lines, proc.stdout[-2000:] + proc.stderr[-2000:]
    raw = json.loads(lines[-1])
    rep = Report(raw, structure=raw["structure"]["status"])
    messages = list(raw["structure"].get("messages") or [])
    md = raw.get("metadata") or {}
    for key in ("schema_results", "schematron_results"):
        res = md.get(key) or {}
        setattr(rep, "schema" if key == "schema_results" else "schematron",
                res.get("status", ""))
        messages += res.get("messages") or []
    rep.errors = [m for m in messages if m["severity"] == "Error"]
    rep.warnings = [m for m in messages if m["severity"] == "Warn"]
    return rep
