"""QCVN 102 document types → Circular 05 ``typeName`` codes: the separate mapping table the
spec calls for (§8: the two numberings differ), kept as versioned data in ``data/doctypes.json``.

The package's ``TypeName`` decides when it names a type (folded like every code-list lookup);
only a package without one falls back on its number (``TypeDetail``, else ``Type``: integrators
put the number in either). What the data file says about its own provenance holds here too.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import lru_cache
from importlib import resources
from typing import Any

from ..codelists import CodeLists
from ..errors import ValidationError
from ..text import fold, nfc

OTHER = "32"  # Khác


@dataclass(frozen=True)
class TypeMapping:
    version: str
    administrative: dict[str, tuple[str, str]]  # QCVN number → (name, TT 05 code)
    names: dict[str, str]  # folded name → TT 05 code (types Circular 05 has no code for)


@lru_cache(maxsize=1)
def load_mapping() -> TypeMapping:
    raw: dict[str, Any] = json.loads(
        resources.files("appliance.edxml").joinpath("data/doctypes.json").read_text("utf-8")
    )
    admin = {str(i["code"]): (str(i["name"]), str(i["typeName"])) for i in raw["administrative"]}
    names = {fold(str(i["name"])): str(i["typeName"]) for i in raw["names"]}
    for _, (name, code) in admin.items():
        names.setdefault(fold(name), code)
    return TypeMapping(str(raw["version"]), admin, names)


def map_type(
    codes: CodeLists, type_name: str, type_code: str = "", type_detail: str = ""
) -> tuple[str, str]:
    """(TypeName as the register writes it, Circular 05 typeName code) of a package's type."""
    mapping = load_mapping()
    name = nfc(type_name)
    if name:
        try:
            item = codes["typeName"].lookup(name)
            return item.label, item.code
        except ValidationError:
            return name, mapping.names.get(fold(name), OTHER)
    for number in (type_detail, type_code):
        number = number.strip().lstrip("0")
        if number and number in mapping.administrative:
            label, code = mapping.administrative[number]
            return label, code
    return codes["typeName"].by_code(OTHER).label, OTHER
