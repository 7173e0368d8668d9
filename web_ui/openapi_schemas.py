"""The OpenAPI document's schemas (openapi.py): records' data from appliance/fields.py, the
inputs of the write operations, and the named component schemas."""

from __future__ import annotations

from typing import Any

from appliance.fields import SCHEMAS, Field, Kind

STR = {"type": "string"}
INT = {"type": "integer"}


def field_schema(f: Field) -> dict[str, Any]:
    desc = f.label_vi
    if f.kind in (Kind.STR, Kind.TEXT, Kind.CODE):
        s: dict[str, Any] = {"type": "string", "description": desc}
        if f.max_len:
            s["maxLength"] = f.max_len
        return s
    if f.kind is Kind.INT:
        s = {"type": "integer", "minimum": 0, "description": desc}
        if f.max_int is not None:
            s["maximum"] = f.max_int
        return s
    if f.kind is Kind.DATE:
        return {"type": "string", "description": desc + " (YYYY-MM-DD or dd/mm/yyyy)"}
    if f.kind is Kind.BOOL:
        return {"type": "boolean", "description": desc}
    if f.kind is Kind.ENUM:
        return {"type": "string", "enum": list(f.choices), "description": desc}
    if f.name == "To":
        return {"type": "array", "description": desc, "items": {
            "type": "object", "required": ["OrganName"],
            "properties": {"OrganId": STR, "OrganName": STR}}}
    if f.name in ("Drafting", "Relation", "Handling"):
        return {"type": "object", "description": desc}
    return {"type": "array", "description": desc, "items": {"type": "object"}}


def data_schema(record_type: str) -> dict[str, Any]:
    return {
        "type": "object",
        "properties": {f.name: field_schema(f) for f in SCHEMAS[record_type]},
        "additionalProperties": True,
    }


SYSTEM_FIELDS = ("Content", "Direction", "Status", "Series", "Year", "ArrivalNumber", "DocOrdinal",
           "DocId")


def input_schema(record_type: str, required: list[str], drop: tuple[str, ...]) -> dict[str, Any]:
    props = {f.name: field_schema(f) for f in SCHEMAS[record_type] if f.name not in drop}
    if record_type == "document":
        props["SignerInfo"] = {"type": "object", "properties": {
            "Position": {"type": "string", "maxLength": 100},
            "FullName": {"type": "string", "maxLength": 50}}}
    return {"type": "object", "required": required, "properties": props,
            "additionalProperties": False}


TEMPLATE = {"type": "object", "description": "Phụ lục I template fields", "properties": {
    "body": {"type": "string", "maxLength": 20000}, "authority": STR, "place": STR,
    "parent_agency": STR, "greeting": STR}}
CAPTURE = {"type": "object", "description": "Where the document's scans stand: step "
             "ocr|sign while queued or running, failed, done, or null (none captured)",
             "properties": {"step": {"type": "string", "nullable": True,
                                     "enum": ["ocr", "sign", "failed", "done", None]},
                            "error": {"type": "string", "nullable": True},
                            "retrying": {"type": "boolean"}}}


def _outgoing_input() -> dict[str, Any]:
    schema = input_schema("document", ["TypeName", "Subject"],
                    (*SYSTEM_FIELDS, "CodeNumber", "IssuedDate", "Drafting", "Deliveries",
                     "Relation", "Handling"))
    schema["properties"].update(
        template=TEMPLATE, paper={"type": "boolean"},
        relation={"type": "object", "required": ["type", "document"], "properties": {
            "type": {"type": "string", "enum": ["recall", "correct"]}, "document": STR}})
    return schema


def components() -> dict[str, Any]:
    return {
        "securitySchemes": {"bearerAuth": {
            "type": "http", "scheme": "bearer",
            "description": "API token from the Account page or `luutru user token`: read-only "
                           "(GET and HEAD) or read-write, valid 1–365 days (90 by default)"}},
        "schemas": {
            "Error": {"type": "object", "required": ["error"], "properties": {"error": {
                "type": "object", "required": ["code", "message"],
                "properties": {"code": STR, "message": STR, "field": STR}}}},
            "Me": {"type": "object", "properties": {
                "username": STR, "role": STR, "role_label": STR, "full_name": STR,
                "cleared": {"type": "boolean"}}},
            "DocumentData": data_schema("document"),
            "FileData": data_schema("file"),
            "Document": {"type": "object", "required": ["id", "version", "data"], "properties": {
                "id": STR, "version": INT, "log_index": INT,
                "data": {"$ref": "#/components/schemas/DocumentData"}}},
            "DocumentWithSeal": {"allOf": [{"$ref": "#/components/schemas/Document"}, {
                "type": "object", "properties": {
                    "seal": {"type": "object", "properties": {
                        "status": {"type": "string", "enum": ["sealed", "pending", "broken"]},
                        "log_index": INT, "checkpoint_size": INT}},
                    "confirmed_at_province": {"type": "boolean"},
                    "capture": CAPTURE}}]},
            "File": {"type": "object", "properties": {
                "id": STR, "version": INT, "data": {"$ref": "#/components/schemas/FileData"},
                "documents": {"type": "array", "items": {"type": "object"}}}},
            "IncomingInput": input_schema(
                "document", ["TypeName", "CodeNumber", "CodeNotation", "OrganName", "Subject"],
                SYSTEM_FIELDS),
            "OutgoingInput": _outgoing_input(),
            # Maintenance (a TT 05 code or "05 năm") or RetentionRef (a kind of the retention
            # table, GET /api/v1/retention), or both: never shorter than the table's period.
            "FileInput": input_schema("file", ["Title"],
                                ("DocTotal", "PageTotal", "Status")),
            "InboxItem": {"type": "object", "properties": {
                "id": STR, "received_at": STR, "subject": STR, "code_number": STR,
                "code_notation": STR, "organ_id": STR, "organ_name": STR, "type_name": STR,
                "verdict": {"type": "string", "enum": ["valid", "unverified", "invalid"],
                            "nullable": True},
                "verdict_label": {"type": "string", "nullable": True},
                "misaddressed": {"type": "boolean"},
                "status": {"type": "string", "enum": ["received", "registered", "returned"]},
                "document_id": {"type": "string", "nullable": True},
                "reason": {"type": "string", "nullable": True},
                "attachments": {"type": "array", "items": {"type": "object"}}}},
            "UseRequestInput": {"type": "object", "required": ["purpose", "items"],
                                "additionalProperties": False, "properties": {
                "purpose": {"type": "string", "maxLength": 1000},
                "purpose_code": {"type": "string", "enum": ["01", "02", "03", "04", "05"]},
                "reader": {"type": "object", "additionalProperties": False, "properties": {
                    "kind": {"type": "string", "enum": ["staff", "outside"]},
                    **{k: {"type": "string", "maxLength": 300} for k in (
                        "name", "organisation", "identity", "address", "clearance_ref")}}},
                "items": {"type": "array", "minItems": 1, "items": {
                    "type": "object", "required": ["document"], "additionalProperties": False,
                    "properties": {"document": STR, "form": {
                        "type": "string", "enum": ["read", "copy", "certified"]}}}}}},
            "UseRequest": {"type": "object", "properties": {
                "id": STR, "year": INT, "number": INT, "status": {
                    "type": "string", "enum": ["pending", "approved", "refused"]},
                "created_at": STR, "created_by": STR, "reader": {"type": "object"},
                "purpose": STR, "purpose_code": STR,
                "items": {"type": "array", "items": {"type": "object"}},
                "decision": {"type": "object", "nullable": True},
                "deliveries": {"type": "array", "items": {"type": "object"}}}},
            "UserOut": {"type": "object", "properties": {
                "username": STR, "role": STR, "full_name": STR, "disabled": {"type": "boolean"}}},
        },
    }
