"""Every kind of log entry the code can write: one list, so that none is written unnoticed.

The ledger refuses an entry whose kind is not here. A new kind therefore has to be added to
this enum, and the tests that walk every kind (``tests/test_classified.py``: no classified
record leaves the box through it; ``tests/test_rebuild.py``: it is replayed or known to project
nothing) fail until they cover it.
"""

from __future__ import annotations

from enum import StrEnum


class Kind(StrEnum):
    # Records: each entry is a record's full new version (Store.put).
    FONDS_CREATE = "fonds.create"
    FONDS_IMPORT = "fonds.import"
    FONDS_CLOSE = "fonds.close"
    FILE_OPEN = "file.open"
    FILE_CLOSE = "file.close"
    FILE_ADD_DOCUMENT = "file.add_document"  # a membership
    FILE_REMOVE_DOCUMENT = "file.remove_document"  # a membership ended, with why
    DOCUMENT_REGISTER = "document.register"
    DOCUMENT_DRAFT = "document.draft"
    DOCUMENT_ISSUE = "document.issue"
    DOCUMENT_UPDATE = "document.update"
    DOCUMENT_CONTENT = "document.content"
    DOCUMENT_IMPORT = "document.import"
    DOCUMENT_DIGITISE = "document.digitise"
    DOCUMENT_RECALL = "document.recall"
    DOCUMENT_DESTROY = "document.destroy"
    DOCUMENT_CANCEL = "document.cancel"  # a registration or draft cancelled (huỷ), with why
    DOCUMENT_DIRECT = "document.direct"  # the leader's direction of a văn bản đến
    DOCUMENT_PROGRESS = "document.progress"  # a handler's progress, or done
    DOCUMENT_LTV = "document.ltv"  # a content version whose signatures the centre made last
    DOCUMENT_MIGRATE = "document.migrate"  # a format migration: a new rendition, the original kept
    # Văn bản đi from draft to issue (appliance/outgoing/): each the document's full new version.
    DOCUMENT_VERSION = "document.version"  # a new version of a draft's content
    DOCUMENT_SUBMIT = "document.submit"  # sent to its reviewer(s) and approver
    DOCUMENT_APPROVE = "document.approve"  # approved (a reviewer's or the approver's)
    DOCUMENT_RETURN = "document.return"  # returned to its drafter with a comment
    DOCUMENT_SIGN = "document.sign"  # the signer's signature on the prepared PDF
    DOCUMENT_DELIVERY = "document.delivery"  # a delivery's status (sent, received, returned)
    # Events about records.
    FILE_CONTENTS = "file.contents"  # the mục lục written when a hồ sơ is closed
    DOCUMENT_TEXT = "document.text"  # OCR text of a document's content
    NUMBERING_USED = "numbering.used"  # a number a withheld document took
    CODELISTS_LOAD = "codelists.load"
    # Archival management.
    ARCHIVE_FREEZE = "archive.freeze"
    ARCHIVE_UNFREEZE = "archive.unfreeze"
    ARCHIVE_RECALL = "archive.recall"
    ARCHIVE_ACCESSION = "archive.accession"
    ARCHIVE_HOLD = "archive.hold"
    ARCHIVE_TRANSFER = "archive.transfer"
    ARCHIVE_DESTRUCTION_LIST = "archive.destruction_list"
    ARCHIVE_DESTRUCTION_DECISION = "archive.destruction_decision"
    ARCHIVE_DESTROY = "archive.destroy"
    ARCHIVE_BACKUP = "archive.backup"
    ARCHIVE_FIXITY_AUDIT = "archive.fixity_audit"
    ARCHIVE_HEAL = "archive.heal"
    ARCHIVE_RESTORE = "archive.restore"
    ARCHIVE_PACKAGE = "archive.package"
    ARCHIVE_EXPORT = "archive.export"
    ARCHIVE_FONDS_EXPORT = "archive.fonds_export"
    # Electronic documents in and out (edXML, QCVN 102): appliance/edxml/inbox.py.
    EDXML_RECEIVED = "edxml.received"  # a package taken into the electronic inbox
    EDXML_VERIFIED = "edxml.verified"  # its signatures checked: verdict and report
    EDXML_REGISTERED = "edxml.registered"  # registered as a văn bản đến (status 03 prepared)
    EDXML_RETURNED = "edxml.returned"  # returned to the sender with a reason (status 02)
    EDXML_STATUS_SENT = "edxml.status_sent"  # a status message handed to the exchange
    EDXML_REFUSED = "edxml.refused"  # a malformed package answered with status 02
    EDXML_EXPORTED = "edxml.exported"  # an issued document packaged for an addressee
    EDXML_TRUST = "edxml.trust"  # a trust root added to or removed from the trust store
    # An addressee's status message about one of our packages (received / accepted / returned)
    EDXML_STATUS_RECEIVED = "edxml.status_received"
    # Registers kept beside the documents (Decree 30 Phụ lục IV): appliance/postal.py,
    # appliance/copyuse.py.
    POSTAL_SEND = "postal.send"  # an issued văn bản đi handed to the post
    COPY_USE = "copy.use"  # the kept copy (bản lưu) of a văn bản đi lent for use
    COPY_RETURN = "copy.return"  # … and given back
    # The Danh mục hồ sơ of a year (appliance/fileplan.py).
    FILEPLAN_HEADINGS = "fileplan.headings"  # a version of its heading structure
    FILEPLAN_APPROVE = "fileplan.approve"  # approved by the head
    # The agency's identity over time (appliance/agency_ids.py).
    AGENCY_REKEY = "agency.rekey"  # a new mã định danh; the old one kept as an alias
    AGENCY_UNITS = "agency.units"  # its administrative-unit codes (QĐ 19/2025, QĐ 124/2004)
    # Use of the archive (appliance/archive/use.py): each entry is the request's full new state.
    USE_REQUEST = "use.request"  # phiếu yêu cầu khai thác, sử dụng tài liệu lưu trữ
    USE_DECIDE = "use.decide"  # approved (with conditions) or refused
    USE_DELIVER = "use.deliver"  # read on screen, a copy, a certified copy, a paper print
    # Publication in the province's catalogue (appliance/archive/publication.py).
    ARCHIVE_PUBLISH = "archive.publish"  # a hồ sơ opened for public use, with its versions
    ARCHIVE_UNPUBLISH = "archive.unpublish"
    # Reads of records (DESIGN.md: every view, print and download is logged).
    AUDIT_VIEW = "audit.view"
    AUDIT_PRINT = "audit.print"
    AUDIT_DOWNLOAD = "audit.download"
    AUDIT_LIST = "audit.list"  # a bulk read: the records a list, search or register returned
    # Users of the web UI (no secret is ever logged).
    USER_ADD = "user.add"
    USER_ROLE = "user.role"
    USER_PASSWORD = "user.password"
    USER_DISABLE = "user.disable"
    USER_ENABLE = "user.enable"
    USER_TOKEN_CREATE = "user.token_create"
    USER_TOKEN_REVOKE = "user.token_revoke"
    # The device, its keys and its software.
    SYNC_RECEIPT = "sync.receipt"
    DEVICE_HANDOVER = "device.handover"
    LOG_TAIL_RESTORED = "log.tail_restored"  # a lost tail brought back from the centre's copy
    PROVISION_IDENTITY = "provision.identity"
    PROVISION_BOOT_EVIDENCE = "provision.boot_evidence"
    SYSTEM_UPDATE_PREPARE = "system.update.prepare"
    SYSTEM_UPDATE_DONE = "system.update.done"


KNOWN = frozenset(k.value for k in Kind)


def audit_kind(action: str) -> Kind:
    """The kind of an ``audit.<action>`` entry (view, print, download, list)."""
    return Kind(f"audit.{action}")
