"""Run the E-ARK validator (PyPI eark-validator) offline, in a child process.

The package downloads four vocabularies on import; ../shared/tools/eark-validate serves them
from ../shared/data. Its command line checks a folder's structure (for a ZIP it checks the
unpack folder instead of the package folder inside it), so we also drive the library: the
structure check on the ZIP itself and its METS schema validation (CSIP local schemas).
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

from tests.conftest import SHARED

WRAPPER = SHARED / "tools" / "eark-validate"

_SCRIPT = r"""
import json, runpy, sys, os
runpy.run_path(sys.argv[1], run_name="eark_offline")  # installs the offline vocabularies
from eark_validator.structure import validate_package_structure
from eark_validator.mets import MetsValidator
zip_path, folder = sys.argv[2], sys.argv[3]
rep = validate_package_structure(zip_path)
out = {"status": rep.status.value,
       "errors": [e.to_json() for e in rep.errors],
       "warnings": [e.to_json() for e in rep.warnings]}
mets_errors = []
mv = MetsValidator(folder)
mv.validate_mets("METS.xml")
mets_errors += [str(e) for e in mv.validation_errors]
for rep_name, href in list(zip(mv.representations, mv.representation_mets)):
    rv = MetsValidator(folder)
    rv.validate_mets(href)
    mets_errors += [str(e) for e in rv.validation_errors]
out["representations"] = list(mv.representations)
out["mets_errors"] = mets_errors
print(json.dumps(out))
"""


def available() -> bool:
    try:
        import eark_validator  # noqa: F401
    except ImportError:
        return False
    return WRAPPER.is_file()


def cli(folder: Path) -> tuple[int, str]:
    """The wrapper's own command line on a package folder."""
    proc = subprocess.run(
        [sys.executable, str(WRAPPER), str(folder)], capture_output=True, text=True, timeout=300
    )
    return proc.returncode, proc.stdout + proc.stderr


def library(zip_path: Path, folder: Path) -> dict[str, Any]:
    proc = subprocess.run(
        [sys.executable, "-c", _SCRIPT, str(WRAPPER), str(zip_path), str(folder)],
        capture_output=True, text=True, timeout=300,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    result: dict[str, Any] = json.loads(proc.stdout.strip().splitlines()[-1])
    return result
