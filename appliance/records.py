"""Validate and normalise a record's fields (pure: no database, no clock)."""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Mapping
from typing import Any

from .clock import parse_date, vn_date
from .codelists import CodeLists
from .errors import ValidationError
from .fields import SCHEMAS, Field, Kind, field_map
from .identifiers import (
    normalise_code_number,
    received_code,
    validate_notation,
    validate_organ_id,
)
from .text import nfc, nfc_multiline

_TRUE = {"1", "true", "yes", "có", "co", "x"}
_FALSE = {"0", "false", "no", "không", "khong", ""}
_SHA256_HEX = re.compile(r"^[0-9a-f]{64}$")


def _str(f: Field, value: Any) -> str:
    text = nfc_multiline(str(value)) if f.kind is Kind.TEXT else nfc(str(value))
    if f.max_len is not None and len(text) > f.max_len:
        raise ValidationError(
            f"{f.name} ({f.label_vi}) has {len(text)} characters; at most {f.max_len} allowed",
            f.name, msgid="%(label)s has %(n)d characters; at most %(max)d are allowed.",
            n=len(text), max=f.max_len,
        )
    return text


def _int(f: Field, value: Any) -> int:
    if isinstance(value, bool):
        raise ValidationError(f"{f.name} must be a number", f.name)
    try:
        n = int(str(value).strip()) if not isinstance(value, int) else value
    except ValueError:
        raise ValidationError(
            f"{f.name} ({f.label_vi}): '{value}' is not a number", f.name,
            msgid="%(label)s must be a number, not '%(value)s'.", value=str(value),
        ) from None
    if n < 0 or (f.max_int is not None and n > f.max_int):
        raise ValidationError(f"{f.name} ({f.label_vi}): {n} is out of range", f.name,
                              msgid="%(label)s: %(n)d is out of range.", n=n)
    return n


def _bool(f: Field, value: Any) -> bool:
    if isinstance(value, bool):
        return value
    key = nfc(str(value)).lower()
    if key in _TRUE:
        return True
    if key in _FALSE:
        return False
    raise ValidationError(f"{f.name}: '{value}' is not yes/no", f.name)


def _recipients(f: Field, value: Any) -> list[dict[str, str]]:
    if isinstance(value, Mapping):
        value = [value]
    if isinstance(value, str):
        value = [{"OrganName": part} for part in value.split(";") if part.strip()]
    if not isinstance(value, list):
        raise ValidationError(f"{f.name} must be a list of recipients", f.name)
    out: list[dict[str, Any]] = []
    for item in value:
        if not isinstance(item, Mapping):
            raise ValidationError(f"{f.name}: each recipient is an object", f.name)
        rec: dict[str, str] = {}
        if item.get("OrganId"):
            rec["OrganId"] = validate_organ_id(str(item["OrganId"]), "To.OrganId", strict=False)
            if len(rec["OrganId"]) > 13:
                raise ValidationError("To.OrganId is longer than 13 characters", "To.OrganId")
        name = nfc(str(item.get("OrganName") or ""))
        if not name:
            raise ValidationError("each recipient needs OrganName", "To.OrganName")
        if len(name) > 200:
            raise ValidationError("To.OrganName is longer than 200 characters", "To.OrganName")
        rec["OrganName"] = name
        out.append(rec)
    return out


def _content(f: Field, value: Any) -> list[dict[str, Any]]:
    if not isinstance(value, list):
        raise ValidationError("Content must be a list", f.name)
    out: list[dict[str, Any]] = []
    for item in value:
        if not isinstance(item, Mapping) or not _SHA256_HEX.match(str(item.get("sha256", ""))):
            raise ValidationError("each content file needs a lower-case hex sha256", f.name)
        size = item.get("size")
        if not isinstance(size, int) or size < 0:
            raise ValidationError("each content file needs its size in bytes", f.name)
        stored: dict[str, Any] = {
            "sha256": item["sha256"],
            "size": size,
            "name": nfc(str(item.get("name") or ""))[:255],
            "mime": str(item.get("mime") or "application/octet-stream")[:100],
        }
        # Provenance of a derived version (appliance/renditions.py): the version it was made
        # from, what made it (ocr, signed, migration: ``rendition``, ``tool``), whether it is
        # that version plus an incremental update and where the bytes are kept
        # (``extends``, ``keep``: appliance/versions.py), and for a signature upgraded at the
        # centre the PAdES level reached (signature_upgrade.py).
        if item.get("from") is not None:
            if not _SHA256_HEX.match(str(item["from"])):
                raise ValidationError("a content file's 'from' must be a sha256", f.name)
            stored["from"] = item["from"]
            if item.get("rendition"):
                stored["rendition"] = nfc(str(item["rendition"]))[:40]
            if item.get("tool"):
                stored["tool"] = nfc(str(item["tool"]))[:200]
        if item.get("extends") is not None:
            if item["extends"] is not True or "from" not in stored:
                raise ValidationError("'extends' is true, and only with 'from'", f.name)
            stored["extends"] = True
        if item.get("keep") is not None:
            if item["keep"] not in ("none", "box"):
                raise ValidationError("a content file's 'keep' is 'none' or 'box'", f.name)
            stored["keep"] = str(item["keep"])
        if item.get("ltv") is not None:
            if str(item["ltv"]) not in ("B-T", "B-LT", "B-LTA"):
                raise ValidationError("a content file's 'ltv' is a PAdES level", f.name)
            stored["ltv"] = str(item["ltv"])
        out.append(stored)
    return out


def _handling(f: Field, value: Any) -> dict[str, Any]:
    """The shape appliance/handling.py writes (checked again on every version)."""
    if not isinstance(value, Mapping) or value.get("status") not in (
        "assigned", "in_progress", "done"
    ):
        raise ValidationError("Handling is not a direction and its progress", f.name)
    out = {k: value.get(k) for k in ("status", "direction", "directed_by", "directed_at",
                                      "lead", "due", "answer", "done_at")}
    support = value.get("support") or []
    progress = value.get("progress") or []
    if not isinstance(support, list) or not all(isinstance(u, str) for u in support):
        raise ValidationError("Handling.support is a list of user names", f.name)
    if not isinstance(progress, list) or not all(
        isinstance(p, Mapping) and isinstance(p.get("note"), str) for p in progress
    ):
        raise ValidationError("Handling.progress is a list of notes", f.name)
    out["support"] = list(support)
    out["progress"] = [{"at": str(p.get("at")), "by": str(p.get("by")),
                        "note": nfc_multiline(str(p["note"])), "done": bool(p.get("done"))}
                       for p in progress]
    direction = out.get("direction")
    if isinstance(direction, str):
        out["direction"] = nfc_multiline(direction)
    return out


def _structured(f: Field, value: Any, shape: type) -> Any:
    """A value appliance/outgoing/ built (its own rules); here only its shape and JSON."""
    import json

    if not isinstance(value, shape):
        raise ValidationError(f"{f.name} has the wrong shape", f.name)
    try:
        return json.loads(json.dumps(value, ensure_ascii=False))
    except (TypeError, ValueError) as exc:
        raise ValidationError(f"{f.name} is not plain data: {exc}", f.name) from None


def normalise_field(f: Field, value: Any, codes: CodeLists) -> Any:
    """Return the stored form of ``value`` for field ``f``, or None when empty."""
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    if f.kind in (Kind.STR, Kind.TEXT):
        return _str(f, value)
    if f.kind is Kind.INT:
        return _int(f, value)
    if f.kind is Kind.DATE:
        return parse_date(value, f.name).isoformat()
    if f.kind is Kind.BOOL:
        return _bool(f, value)
    if f.kind is Kind.CODE:
        assert f.code_list is not None
        try:
            return codes[f.code_list].lookup(value).code
        except ValidationError as exc:
            raise ValidationError(str(exc), f.name, msgid="%(label)s: '%(value)s' is not one "
                                  "of the choices.", value=str(value)) from exc
    if f.kind is Kind.ENUM:
        text = nfc(str(value))
        if text not in f.choices:
            raise ValidationError(
                f"{f.name}: '{value}' is not one of {', '.join(f.choices)}", f.name,
                msgid="%(label)s: '%(value)s' is not one of the choices.", value=str(value),
            )
        return text
    if f.name == "To":
        return _recipients(f, value) or None
    if f.name == "Content":
        return _content(f, value) or None
    if f.name == "Handling":
        return _handling(f, value)
    if f.name in ("Drafting", "Relation"):  # appliance/outgoing/ writes and checks them
        return _structured(f, value, Mapping)
    if f.name == "Deliveries":
        return _structured(f, value, list)
    raise ValidationError(f"{f.name}: unsupported structured value", f.name)


def normalise(record_type: str, raw: Mapping[str, Any], codes: CodeLists) -> dict[str, Any]:
    """Validate every field of ``raw`` against the schema; unknown fields are refused."""
    fields = field_map(record_type)
    data: dict[str, Any] = {}
    for name, value in raw.items():
        f = fields.get(name)
        if f is None:
            raise ValidationError(f"unknown field '{name}' for a {record_type}", name,
                                  msgid="There is no field '%(value)s'.", value=name)
        stored = normalise_field(f, value, codes)
        if stored is not None:
            data[name] = stored
    return data


def require(data: Mapping[str, Any], *names: str) -> None:
    """Refuse a record missing any of ``names`` (the first missing one is named)."""
    for name in names:
        if data.get(name) in (None, "", []):
            label = next((f.label_vi for fields in SCHEMAS.values() for f in fields
                          if f.name == name), None)
            said = f"{name} ({label})" if label else name
            raise ValidationError(f"{said} is required", name, msgid="%(label)s is required.")


def complete_document(data: dict[str, Any], codes: CodeLists) -> dict[str, Any]:
    """Cross-field rules of a document: type name and TT 05 code agree, defaults, notation."""
    types = codes["typeName"]
    if "TypeName" in data:
        try:
            item = types.lookup(data["TypeName"])
            data.setdefault("TypeCode", item.code)
        except ValidationError:
            # Legacy registers carry types the code list lacks; TT 05 calls them "Khác" (32).
            data.setdefault("TypeCode", types.lookup("Khác").code)
    elif "TypeCode" in data:
        data["TypeName"] = types.by_code(data["TypeCode"]).label
    else:
        require(data, "TypeName")
    data.setdefault("Language", "01")
    data.setdefault("Mode", "01")
    if data.get("Direction") == "incoming":  # the sender's number, as written
        for f in ("CodeNumber", "CodeNotation"):
            if f in data:
                data[f] = received_code(data[f], f)
    else:  # our own number: Decree 30's rules
        if "CodeNumber" in data:
            data["CodeNumber"] = normalise_code_number(data["CodeNumber"])
        if "CodeNotation" in data:
            data["CodeNotation"] = validate_notation(data["CodeNotation"])
    require(data, "Subject")
    return data


def plausibility(data: Mapping[str, Any], today: dt.date) -> list[ValidationError]:
    """What is possible but probably a typing mistake: a document dated in the future, a
    deadline before the document arrived. Warnings for the clerk to confirm, not refusals."""
    out = []
    issued = data.get("IssuedDate")
    if isinstance(issued, str) and issued > today.isoformat():
        out.append(ValidationError(f"IssuedDate {issued} is in the future", "IssuedDate",
                                   msgid="%(label)s %(value)s is in the future.",
                                   value=vn_date(issued)))
    due, arrived = data.get("DueDate"), data.get("ArrivalDate") or today.isoformat()
    if isinstance(due, str) and due < str(arrived):
        out.append(ValidationError(f"DueDate {due} is before the arrival date", "DueDate",
                                   msgid="%(label)s %(value)s is before the document arrived.",
                                   value=vn_date(due)))
    return out
