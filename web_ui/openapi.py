"""The OpenAPI 3 description of /api/v1, built from the route table so that it stays true.

tests/web/test_openapi.py checks that every API route of ``permissions.ROUTES`` is described
(and nothing else), and schemathesis exercises the description against a live server.
"""

from __future__ import annotations

from functools import cache
from typing import Any

from appliance.accounts import Role

from . import permissions
from .openapi_schemas import CAPTURE, INT, STR, TEMPLATE, components


def _json(schema: dict[str, Any] | str) -> dict[str, Any]:
    if isinstance(schema, str):
        schema = {"$ref": f"#/components/schemas/{schema}"}
    return {"application/json": {"schema": schema}}


def _ok(schema: dict[str, Any] | str, desc: str = "OK", status: str = "200") -> dict[str, Any]:
    return {status: {"description": desc, "content": _json(schema)}}


_ERR = {
    code: {"description": desc, "content": _json("Error")}
    for code, desc in (
        ("400", "Bad request"),
        ("401", "No valid token or session (a token expires, 90 days by default)"),
        ("403", "The role may not use this call, the token is read-only, or CSRF refused"),
        ("404", "Not found (classified records are not found for roles without clearance)"),
        ("405", "Method not allowed"),
        ("409", "Conflicts with what is stored (closed fonds, not a draft, already in file)"),
        ("413", "Body too large"),
        ("422", "A field breaks the rules of Decree 30 / Circular 05, or the upload is refused"),
        ("503", "The device key cannot seal now; nothing was written"),
    )
}

_PATH_PARAMS = {
    "id": {"name": "id", "in": "path", "required": True, "schema": STR,
           "description": "Document id, or use request id (UUID)"},
    "sha256": {"name": "sha256", "in": "path", "required": True,
               "schema": {"type": "string", "pattern": "^[0-9a-f]{64}$"}},
    "code": {"name": "code", "in": "path", "required": True, "schema": STR,
             "description": "Mã hồ sơ, e.g. 000.21.08.H49.2025.01.VP"},
    "kind": {"name": "kind", "in": "path", "required": True,
             "schema": {"type": "string", "enum": ["incoming", "outgoing", "handling", "post",
                                                   "copies"]},
             "description": "incoming: Sổ đăng ký văn bản đến; outgoing: Sổ đăng ký văn bản "
                            "đi; handling: Sổ theo dõi giải quyết văn bản đến; post: Sổ gửi "
                            "văn bản đi bưu điện; copies: Sổ sử dụng bản lưu"},
    "use_id": {"name": "use_id", "in": "path", "required": True, "schema": STR,
               "description": "Id of a use of the kept copy (from POST …/copy-uses)"},
    "year": {"name": "year", "in": "path", "required": True,
             "schema": {"type": "integer", "minimum": 1900, "maximum": 2200}},
    "n": {"name": "n", "in": "path", "required": True,
          "schema": {"type": "integer", "minimum": 1, "maximum": 999},
          "description": "The delivery's number"},
}


def _q(name: str, schema: dict[str, Any], desc: str = "") -> dict[str, Any]:
    p: dict[str, Any] = {"name": name, "in": "query", "required": False, "schema": schema}
    if desc:
        p["description"] = desc
    return p


_DOC_WRITE = {"application/json": {"schema": {"type": "object", "properties": {
    "document": {"$ref": "#/components/schemas/Document"},
    "warnings": {"type": "array", "items": STR},
    "number_if_issued_now": STR}}}}
_REGISTER_JSON = {"type": "object", "properties": {
    "kind": STR, "direction": STR, "year": INT, "title": STR, "total": INT,
    "period": {"type": "object", "properties": {"from": STR, "to": STR,
                                                "whole_year": {"type": "boolean"}}},
    "columns": {"type": "array", "items": STR},
    "rows": {"type": "array", "items": {"type": "object", "properties": {
        "id": STR, "cells": {"type": "array", "items": STR},
        "values": {"type": "array", "items": {"nullable": True}}}}}}}
_DATE = {"type": "string", "description": "YYYY-MM-DD or dd/mm/yyyy"}
_SENDING = {"type": "object", "properties": {
    "id": STR, "document_id": STR, "sent_on": STR, "envelopes": INT,
    "addressees": {"type": "array", "items": {"type": "object", "properties": {
        "OrganName": STR, "OrganId": STR}}},
    "note": {"type": "string", "nullable": True}, "actor": STR, "at": STR, "log_index": INT}}
_USE = {"type": "object", "properties": {
    "id": STR, "document_id": STR, "used_on": STR, "user_name": STR, "approved_by": STR,
    "note": {"type": "string", "nullable": True},
    "returned_on": {"type": "string", "nullable": True},
    "return_note": {"type": "string", "nullable": True}, "actor": STR, "at": STR,
    "log_index": INT, "return_index": {"type": "integer", "nullable": True}}}
_HEADINGS_IN = {"type": "array", "minItems": 1, "maxItems": 200, "items": {
    "type": "object", "required": ["title"], "properties": {
        "code": {"type": "string", "description": "I, II, III… in order"},
        "title": {"type": "string", "minLength": 1, "maxLength": 250},
        "abbr": {"type": "string", "pattern": "^([0-9A-ZĐ]{1,10})?$",
                 "description": "the abbreviation its hồ sơ numbers end with (01.VP); empty: "
                                "none"},
        "children": {"type": "array", "items": {"type": "object", "required": ["title"],
                                                "properties": {"code": STR, "title": {
                                                    "type": "string", "minLength": 1,
                                                    "maxLength": 250}}}}}}}

_DOC_ONLY = {"type": "object", "properties": {
    "document": {"$ref": "#/components/schemas/Document"}}}
_REASON = {"type": "object", "required": ["reason"], "properties": {
    "reason": {"type": "string", "minLength": 1, "maxLength": 500}}}


_COMMENT = {"type": "object", "properties": {"comment": {"type": "string", "maxLength": 2000}}}


def _links(ops: tuple[str, ...], param: str, expr: str) -> dict[str, Any]:
    return {op: {"operationId": op, "parameters": {param: expr}} for op in ops}


_DOC_LINKS = _links(("api_document", "api_issue", "api_history", "api_upload",
                     "api_add_to_file"), "id", "$response.body#/document/id")
_FILE_LINKS = _links(("api_file", "api_file_close"), "code", "$response.body#/data/FileCode")

OPERATIONS: dict[str, dict[str, Any]] = {
    "api_openapi": {"summary": "This document", "responses": _ok({"type": "object"})},
    "api_me": {"summary": "Who the token belongs to", "responses": _ok("Me")},
    "api_status": {"summary": "Seal and sync status", "responses": _ok({"type": "object"})},
    "api_device": {"summary": "Device key, latest checkpoint, versions, storage (used, rate, "
                              "days left, lossless masters)",
                   "responses": _ok({"type": "object"})},
    "api_search": {
        "summary": "Search documents (diacritics optional); newest first",
        "parameters": [
            _q("q", {"type": "string", "maxLength": 200}, "words, with or without diacritics"),
            _q("year", {"type": "integer", "minimum": 1900, "maximum": 2200}),
            _q("type", STR, "type name or TT 05 type code"),
            _q("direction", {"type": "string", "enum": ["incoming", "outgoing"]}),
            _q("fond", STR), _q("file", STR, "mã hồ sơ"),
            _q("limit", {"type": "integer", "minimum": 1, "maximum": 200}),
            _q("offset", {"type": "integer", "minimum": 0}),
        ],
        "responses": _ok({"type": "object", "properties": {
            "items": {"type": "array", "items": {"type": "object", "properties": {
                "id": STR, "data": {"$ref": "#/components/schemas/DocumentData"}}}},
            "limit": INT, "offset": INT}}),
    },
    "api_incoming": {
        "summary": "Register a văn bản đến (số đến is given automatically)",
        "requestBody": {"required": True, "content": _json("IncomingInput")},
        "responses": {"201": {"description": "Registered; warnings name duplicates (§2.10)",
                              "content": _DOC_WRITE, "links": _DOC_LINKS}},
    },
    "api_outgoing": {
        "summary": "Draft a văn bản đi: metadata with template fields (Decree 30 Phụ lục I), or "
                   "multipart with a metadata JSON part and the PDF or DOCX as file; "
                   "\"paper\": true for a document signed on paper (numbered at issue)",
        "requestBody": {"required": True, "content": {
            **_json("OutgoingInput"),
            "multipart/form-data": {"schema": {"type": "object", "properties": {
                "metadata": {"type": "string", "description": "OutgoingInput as JSON"},
                "file": {"type": "string", "format": "binary"}}}}}},
        "responses": {"201": {"description": "Drafted", "content": _DOC_WRITE,
                              "links": _DOC_LINKS}},
    },
    "api_version": {
        "summary": "A new version of a draft (template fields, or multipart with the file)",
        "requestBody": {"required": True, "content": {
            **_json({"type": "object", "properties": {"template": TEMPLATE, "note": STR}}),
            "multipart/form-data": {"schema": {"type": "object", "properties": {
                "metadata": STR, "file": {"type": "string", "format": "binary"}}}}}},
        "responses": _ok(_DOC_ONLY, "Saved", "201"),
    },
    "api_submit": {
        "summary": "Submit a draft to its reviewers (optional) and approver (its signer)",
        "requestBody": {"required": True, "content": _json({
            "type": "object", "required": ["approver"], "properties": {
                "approver": STR, "reviewers": {"type": "array", "items": STR},
                "comment": {"type": "string", "maxLength": 2000}}})},
        "responses": _ok(_DOC_ONLY),
    },
    "api_approve": {
        "summary": "Approve (a reviewer, then the approver; the clerk cannot): the approver's "
                   "approval prepares the PDF to sign",
        "requestBody": {"required": False, "content": _json(_COMMENT)},
        "responses": _ok(_DOC_ONLY),
    },
    "api_return": {
        "summary": "Return a draft to its drafter with a comment",
        "requestBody": {"required": True, "content": _json({**_COMMENT,
                                                            "required": ["comment"]})},
        "responses": _ok(_DOC_ONLY),
    },
    "api_sign": {
        "summary": "The signer's signature: with the PIN of their key on the box, or multipart "
                   "with file, the prepared PDF signed elsewhere (checked to be the prepared "
                   "PDF plus a valid signature by their registered certificate)",
        "requestBody": {"required": True, "content": {
            **_json({"type": "object", "required": ["pin"], "properties": {
                "role": {"type": "string", "enum": ["signer"]},
                "pin": {"type": "string", "minLength": 6, "maxLength": 32}}}),
            "multipart/form-data": {"schema": {"type": "object", "properties": {
                "file": {"type": "string", "format": "binary"}}}}}},
        "responses": _ok(_DOC_ONLY),
    },
    "api_deliveries": {
        "summary": "The deliveries of an issued văn bản đi, each with its channel and status, "
                   "when it reached that status (status_at, ISO; the addressee's own time "
                   "for a status message it sent) and the addressee's status messages that "
                   "did not move it (answers: unsigned, untrusted, forged, late)",
        "responses": _ok({"type": "object", "properties": {"document": STR, "items": {
            "type": "array", "items": {"type": "object", "properties": {
                "n": {"type": "integer"},
                "channel": {"type": "string", "enum": ["electronic", "paper", "internal"]},
                "status": {"type": "string", "enum": [
                    "pending", "packaged", "sent", "received", "accepted", "returned"]},
                "status_vi": STR, "status_at": {"type": ["string", "null"]},
                "history": {"type": "array", "items": {"type": "object"}},
                "answers": {"type": "array", "items": {"type": "object"}}}}}}}),
    },
    "api_delivery": {
        "summary": "Change a delivery's status (sent, received, accepted, returned)",
        "requestBody": {"required": True, "content": _json({
            "type": "object", "required": ["status"], "properties": {
                "status": {"type": "string",
                           "enum": ["sent", "received", "accepted", "returned"]},
                "note": {"type": "string", "maxLength": 500},
                "envelopes": {"type": "integer", "minimum": 1, "maximum": 99}}})},
        "responses": _ok(_DOC_ONLY),
    },
    "api_signers": {
        "summary": "The signers' keys and certificates (days left, a warning under 30 days)",
        "responses": _ok({"type": "object", "properties": {
            "items": {"type": "array", "items": {"type": "object"}},
            "seal": {"type": "boolean"}}}),
    },
    "api_document": {"summary": "A document with its seal state (the view is logged)",
                     "responses": _ok("DocumentWithSeal")},
    "api_issue": {"summary": "Issue a signed draft (or a paper one): the number and date are "
                             "written into it and the agency signs the whole; 409 with the "
                             "reason if it is not approved and signed",
                  "requestBody": {"required": False, "content": _json({
                      "type": "object", "properties": {
                          "file_code": STR, "internal": {"type": "array", "items": STR},
                          "agency_pin": STR}})},
                  "responses": {"200": {"description": "Issued", "content": _DOC_WRITE}}},
    "api_history": {"summary": "Log entries naming the document", "responses": _ok({
        "type": "object", "properties": {"items": {"type": "array", "items": {"type": "object"}},
                                         "complete": {"type": "boolean"}}})},
    "api_upload": {
        "summary": "Attach a file (PDF, JPEG, PNG, TIFF); the body is the file. A computer-made "
                   "PDF is kept as sent; a photo or scan goes through capture (one PDF now, "
                   "its OCR'd, signed PDF/A from the background worker: see capture)",
        "parameters": [_q("name", {"type": "string", "maxLength": 200}, "file name")],
        "requestBody": {"required": True, "content": {
            t: {"schema": {"type": "string", "format": "binary"}} for t in (
                "application/pdf", "image/jpeg", "image/png", "image/tiff",
                "application/octet-stream")}},
        "responses": {"201": {"description": "Stored and attached", "content": _json({
            "type": "object", "properties": {
                "document": {"$ref": "#/components/schemas/Document"},
                "content": {"type": "object", "nullable": True},
                "capture": CAPTURE}})}},
    },
    "api_content": {
        "summary": "A content file of the document: a PDF (or ?print=1) comes as the marked "
                   "print copy (TÀI LIỆU LƯU TRỮ CHUYỂN ĐỔI, BẢN SAO), ?download=1 as the stored "
                   "file with its signature (each view, print or download is logged)",
        "parameters": [_q("download", {"type": "string", "enum": ["1"]}),
                       _q("print", {"type": "string", "enum": ["1"]}),
                       _q("preview", {"type": "string", "enum": ["png"]})],
        "responses": {"200": {"description": "The file", "content": {
            t: {"schema": {"type": "string", "format": "binary"}} for t in (
                "application/pdf", "image/jpeg", "image/png", "image/tiff")}}},
    },
    "api_add_to_file": {
        "summary": "Put the document into a hồ sơ (without copying it)",
        "requestBody": {"required": True, "content": _json({
            "type": "object", "required": ["FileCode"], "properties": {"FileCode": STR}})},
        "responses": _ok({"type": "object", "properties": {
            "document": {"$ref": "#/components/schemas/Document"}}}),
    },
    "api_document_update": {
        "summary": "Correct a registered document's fields, giving a reason (logged with the "
                   "new version; numbers never change)",
        "requestBody": {"required": True, "content": _json({
            "type": "object", "required": ["changes", "reason"], "properties": {
                "changes": {"type": "object", "minProperties": 1},
                "reason": {"type": "string", "minLength": 1, "maxLength": 500},
                "version": INT}})},
        "responses": _ok(_DOC_ONLY),
    },
    "api_cancel": {
        "summary": "Cancel (huỷ) a registration or a draft; its number stays in the register",
        "requestBody": {"required": True, "content": _json(_REASON)},
        "responses": _ok(_DOC_ONLY),
    },
    "api_content_remove": {
        "summary": "Take an attachment off the current version (the file stays in the log)",
        "parameters": [_q("reason", {"type": "string", "minLength": 1, "maxLength": 500})],
        "responses": _ok(_DOC_ONLY),
    },
    "api_remove_from_file": {
        "summary": "Take the document out of an open hồ sơ (its own, or one it was added to); "
                   "the log keeps when and why",
        "parameters": [_q("reason", {"type": "string", "minLength": 1, "maxLength": 500})],
        "responses": _ok(_DOC_ONLY),
    },
    "api_direction": {
        "summary": "The leader's direction of a văn bản đến: lead and co-handlers, deadline",
        "requestBody": {"required": True, "content": _json({
            "type": "object", "required": ["direction"], "properties": {
                "direction": {"type": "string", "minLength": 1, "maxLength": 2000},
                "lead": STR, "support": {"type": "array", "items": STR},
                "due": {"type": "string", "format": "date"},
                "for_information": {"type": "boolean", "description": "để biết: no handler, "
                                    "no deadline (lead, support and due are then ignored)"}}})},
        "responses": _ok(_DOC_ONLY),
    },
    "api_progress": {
        "summary": "A handler's progress; done, with the văn bản đi that answers it",
        "requestBody": {"required": True, "content": _json({
            "type": "object", "required": ["note"], "properties": {
                "note": {"type": "string", "minLength": 1, "maxLength": 2000},
                "done": {"type": "boolean"}, "answer": STR}})},
        "responses": _ok(_DOC_ONLY),
    },
    "api_tasks": {
        "summary": "Văn bản đến to handle, overdue first (mine=1: the caller's own)",
        "parameters": [_q("mine", {"type": "string", "enum": ["0", "1"]}),
                       _q("overdue", {"type": "string", "enum": ["0", "1"]})],
        "responses": _ok({"type": "object", "properties": {"items": {"type": "array",
                          "items": {"type": "object"}}}}),
    },
    "api_files": {
        "summary": "Danh mục hồ sơ of a year",
        "parameters": [_q("year", {"type": "integer", "minimum": 1900, "maximum": 2200})],
        "responses": _ok({"type": "object", "properties": {"year": INT, "items": {
            "type": "array", "items": {"$ref": "#/components/schemas/FileData"}}}}),
    },
    "api_retention": {
        "summary": "The retention table: kinds of hồ sơ, period, legal source, TT 05 code",
        "responses": _ok({"type": "object", "properties": {
            "version": STR, "origin": STR, "sources": {"type": "object"},
            "items": {"type": "array", "items": {"type": "object", "properties": {
                "id": STR, "group": STR, "title": STR, "period": STR,
                "years": {"type": ["integer", "null"]}, "maintenance": STR, "source": STR,
                "provenance": STR}}}}}),
    },
    "api_file_create": {
        "summary": "Open a hồ sơ",
        "requestBody": {"required": True, "content": _json("FileInput")},
        "responses": {"201": {"description": "Opened", "content": _json("File"),
                              "links": _FILE_LINKS}},
    },
    "api_file": {"summary": "A hồ sơ and its documents (the view is logged)",
                 "responses": _ok("File")},
    "api_file_close": {"summary": "Close a hồ sơ (counts documents and pages)",
                       "responses": _ok("File")},
    "api_register": {
        "summary": "A register of Decree 30 Phụ lục IV for a year or a period of it (PDF and "
                   "XLSX prints are logged)",
        "parameters": [
            _q("from", {"type": "string", "format": "date"},
               "first day (YYYY-MM-DD), in the year; default 1 January"),
            _q("to", {"type": "string", "format": "date"},
               "last day (YYYY-MM-DD), in the year; default 31 December"),
            _q("format", {"type": "string", "enum": ["json", "pdf", "xlsx"]}),
            _q("classified", {"type": "string", "enum": ["0", "1"]},
               "1: the separate register of the mật series (cleared roles only)"),
            _q("limit", {"type": "integer", "minimum": 1, "maximum": 1000}),
            _q("offset", {"type": "integer", "minimum": 0}),
        ],
        "responses": {"200": {"description": "The register", "content": {
            "application/json": {"schema": _REGISTER_JSON},
            "application/pdf": {"schema": {"type": "string", "format": "binary"}},
            "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet": {
                "schema": {"type": "string", "format": "binary"}}}}},
    },
    "api_inbox_electronic": {
        "summary": "The electronic inbox: received edXML packages and their verdicts",
        "parameters": [_q("status", {"type": "string",
                                     "enum": ["received", "registered", "returned"]},
                          "received: waiting for the clerk's decision (default: all)")],
        "responses": _ok({"type": "object", "properties": {"items": {
            "type": "array", "items": {"$ref": "#/components/schemas/InboxItem"}},
            "refused": {"type": "array", "items": {"type": "object"},
                        "description": "packages refused for their structure whose sender "
                                       "could be read: reason, status 02 and when it went"},
            "unmatched_status": {"type": "array", "items": {"type": "object"},
                                 "description": "status messages about no delivery of ours"},
        }}),
    },
    "api_inbox_electronic_register": {
        "summary": "Register a received package as a văn bản đến (fields from the envelope, "
                   "the signed files attached as received); status 03 goes to the sender",
        "requestBody": {"required": False, "content": _json({
            "type": "object", "additionalProperties": False, "properties": {
                "accept_unverified": {"type": "boolean", "description":
                                      "register although the signatures could not be checked"},
                "fields": {"type": "object", "description": "document fields to change"}}})},
        "responses": {"201": {"description": "Registered", "content": _DOC_WRITE,
                              "links": _DOC_LINKS}},
    },
    "api_inbox_electronic_return": {
        "summary": "Return a received package to its sender with a reason (status 02)",
        "requestBody": {"required": True, "content": _json({
            "type": "object", "required": ["reason"], "additionalProperties": False,
            "properties": {"reason": {"type": "string", "minLength": 1, "maxLength": 500}}})},
        "responses": _ok("InboxItem"),
    },
    "api_postal": {
        "summary": "Record that an issued văn bản đi was handed to the post (Sổ gửi văn bản "
                   "đi bưu điện)",
        "requestBody": {"required": True, "content": _json({
            "type": "object", "required": ["sent_on", "addressees"],
            "additionalProperties": False, "properties": {
                "sent_on": _DATE,
                "addressees": {"type": "array", "minItems": 1, "maxItems": 200, "items": {
                    "oneOf": [{"type": "string", "minLength": 1, "maxLength": 200},
                              {"type": "object", "required": ["OrganName"], "properties": {
                                  "OrganName": {"type": "string", "minLength": 1,
                                                "maxLength": 200},
                                  "OrganId": {"type": "string", "maxLength": 35}}}]}},
                "envelopes": {"type": "integer", "minimum": 1, "maximum": 9999,
                              "description": "default: one per addressee"},
                "note": {"type": "string", "maxLength": 500}}})},
        "responses": _ok({"type": "object", "properties": {"sending": _SENDING}},
                         "Recorded", "201"),
    },
    "api_postal_list": {"summary": "The document's postal sendings", "responses": _ok({
        "type": "object", "properties": {"items": {"type": "array", "items": _SENDING}}})},
    "api_copy_use": {
        "summary": "Record that the kept copy (bản lưu) of a văn bản đi was lent for use",
        "requestBody": {"required": True, "content": _json({
            "type": "object", "required": ["used_on", "user_name", "approved_by"],
            "additionalProperties": False, "properties": {
                "used_on": _DATE, "user_name": {"type": "string", "maxLength": 100},
                "approved_by": {"type": "string", "maxLength": 100,
                                "description": "Người cho phép sử dụng"},
                "note": {"type": "string", "maxLength": 500}}})},
        "responses": _ok({"type": "object", "properties": {"use": _USE}}, "Recorded", "201"),
    },
    "api_copy_uses": {"summary": "The uses of the document's kept copy", "responses": _ok({
        "type": "object", "properties": {"items": {"type": "array", "items": _USE}}})},
    "api_copy_return": {
        "summary": "Record that the lent kept copy came back",
        "requestBody": {"required": True, "content": _json({
            "type": "object", "required": ["returned_on"], "additionalProperties": False,
            "properties": {"returned_on": _DATE, "note": {"type": "string", "maxLength": 500}}})},
        "responses": _ok({"type": "object", "properties": {"use": _USE}}),
    },
    "api_fileplan": {
        "summary": "The Danh mục hồ sơ of a year: heading structure, approval, hồ sơ",
        "responses": _ok({"type": "object", "properties": {
            "year": INT, "headings": {"type": "object", "nullable": True},
            "approval": {"type": "object", "nullable": True},
            "changed_since_approval": {"type": "boolean"},
            "files": {"type": "array", "items": {"$ref": "#/components/schemas/FileData"}}}}),
    },
    "api_fileplan_headings": {
        "summary": "A new version of the year's heading structure (hồ sơ choose from it)",
        "requestBody": {"required": True, "content": _json({
            "type": "object", "required": ["headings"], "additionalProperties": False,
            "properties": {"headings": _HEADINGS_IN}})},
        "responses": _ok({"type": "object"}, "Saved", "201"),
    },
    "api_fileplan_approve": {
        "summary": "The head approves the year's Danh mục hồ sơ as it stands (a log entry)",
        "requestBody": {"required": True, "content": _json({
            "type": "object", "required": ["decision"], "additionalProperties": False,
            "properties": {"decision": {"type": "string", "minLength": 1, "maxLength": 300},
                           "approved_on": _DATE,
                           "position": {"type": "string", "maxLength": 100}}})},
        "responses": _ok({"type": "object"}, "Approved", "201"),
    },
    "api_use_list": {
        "summary": "Requests to use records (phiếu yêu cầu khai thác) the caller may see",
        "parameters": [_q("year", {"type": "integer", "minimum": 1900, "maximum": 2200}),
                       _q("status", {"type": "string",
                                     "enum": ["pending", "approved", "refused"]})],
        "responses": _ok({"type": "object", "properties": {"items": {
            "type": "array", "items": {"$ref": "#/components/schemas/UseRequest"}}}}),
    },
    "api_use_create": {
        "summary": "Record a request to use records; it waits for the approver",
        "description": "Restricted (02) and classified (03) documents are offered only to "
                       "cleared roles; an outside reader (desk roles only) needs the written "
                       "permission for them; classified ones are only read on the spot.",
        "requestBody": {"required": True, "content": _json("UseRequestInput")},
        "responses": _ok("UseRequest", "Recorded", "201"),
    },
    "api_use_request": {"summary": "A request to use records", "responses": _ok("UseRequest")},
    "api_use_approve": {
        "summary": "Approve a request (all items, or those listed), with conditions",
        "requestBody": {"required": True, "content": _json({
            "type": "object", "additionalProperties": False, "properties": {
                "note": {"type": "string", "maxLength": 1000},
                "items": {"type": "array", "items": {"type": "integer", "minimum": 0}}}})},
        "responses": _ok("UseRequest"),
    },
    "api_use_refuse": {
        "summary": "Refuse a request (the reason is required)",
        "requestBody": {"required": True, "content": _json({
            "type": "object", "required": ["note"], "additionalProperties": False,
            "properties": {"note": {"type": "string", "minLength": 1, "maxLength": 1000}}})},
        "responses": _ok("UseRequest"),
    },
    "api_use_deliver": {
        "summary": "Deliver an approved item: read on screen (logged), or the copy's PDF "
                   "(marked BẢN SAO; certified copies signed by the agency key)",
        "requestBody": {"required": True, "content": _json({
            "type": "object", "required": ["item", "medium"], "additionalProperties": False,
            "properties": {"item": {"type": "integer", "minimum": 0},
                           "medium": {"type": "string",
                                      "enum": ["screen", "digital", "paper"]}}})},
        "responses": {"200": {"description": "The copy, or where to read the document (its "
                                             "marked pages: /use/{id}/read/{item})",
                              "content": {
                                  "application/pdf": {"schema": {"type": "string",
                                                                 "format": "binary"}},
                                  "application/json": {"schema": {"type": "object"}}}}},
    },
    "api_use_register": {
        "summary": "Sổ đăng ký khai thác, sử dụng tài liệu lưu trữ of a year, with statistics",
        "responses": _ok({"type": "object", "properties": {
            "year": INT, "columns": {"type": "array", "items": STR},
            "rows": {"type": "array", "items": {"type": "array", "items": STR}},
            "statistics": {"type": "object"}}}),
    },
    "api_users": {"summary": "Users and roles", "responses": _ok({
        "type": "object", "properties": {"items": {"type": "array", "items": {
            "$ref": "#/components/schemas/UserOut"}}}})},
    "api_user_create": {
        "summary": "Create a user (leader only); the log records it, never the password",
        "requestBody": {"required": True, "content": _json({
            "type": "object", "required": ["username", "role", "password"],
            "additionalProperties": False, "properties": {
                "username": {"type": "string", "pattern": "^[a-z0-9._-]{2,40}$"},
                "role": {"type": "string", "enum": [r.value for r in Role]},
                "password": {"type": "string", "minLength": 12, "maxLength": 200},
                "full_name": {"type": "string", "maxLength": 100}}})},
        "responses": _ok("UserOut", "Created", "201"),
    },
}


@cache
def openapi_document() -> dict[str, Any]:
    paths: dict[str, dict[str, Any]] = {}
    for route in permissions.ROUTES:
        if not route.api:
            continue
        op = dict(OPERATIONS[route.name])
        op["operationId"] = route.name
        params = [_PATH_PARAMS[p] for p in _path_params(route.path)]
        op["parameters"] = params + list(op.get("parameters", []))
        if not op["parameters"]:
            del op["parameters"]
        responses = dict(op["responses"])
        for code, resp in _ERR.items():
            responses.setdefault(code, resp)
        op["responses"] = responses
        if route.public:
            op["security"] = []
        else:
            roles = ", ".join(sorted(r.value for r in route.roles))
            more = (" (default; the office may name other approver roles in appliance.json, "
                    "use.approver_roles)") if route.configurable else ""
            op["description"] = (f"{op['description']} " if op.get("description") else "") + \
                f"Roles: {roles}{more}."
        paths.setdefault(route.path.removeprefix("/api/v1"), {})[route.method.lower()] = op
    return {
        "openapi": "3.0.3",
        "info": {"title": "luutru appliance API", "version": "1",
                 "description": "Sổ đăng ký văn bản, hồ sơ và lưu trữ niêm phong (UBND xã)."},
        "servers": [{"url": "/api/v1"}],
        "security": [{"bearerAuth": []}],
        "paths": paths,
        "components": components(),
    }


def _path_params(path: str) -> list[str]:
    import re

    return re.findall(r"{(\w+)}", path)
