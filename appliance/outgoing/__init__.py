"""Văn bản đi from draft to a lawfully signed, numbered and distributed document (Decree 30
Điều 12–17, Phụ lục I).

The steps, each a log entry carrying the document's full new version:

1. ``drafting``: a clerk or handler writes a draft (``document.draft``): metadata and its
   content, composed from a Phụ lục I template (``layout``), an uploaded PDF, or a DOCX
   converted on the box (``docx``). Every new version is ``document.version``.
2. ``drafting``: submitted to its reviewer(s) and approver (``document.submit``); each may
   return it with a comment (``document.return``) or approve it (``document.approve``). The
   approver's approval prepares the PDF to sign (``pdfform.prepare``): empty fields for the
   number and date where Phụ lục I puts them, and the two signature fields (box 7c and the
   seal overlapping its left third).
3. ``signing``: the signer (the approver, người có thẩm quyền) signs the prepared PDF with a
   personal key on the box, unlocked by their PIN at each signing (TPM or PKCS#11), or signs
   it elsewhere and uploads it, checked to be the prepared PDF plus a valid signature by the
   expected certificate (``document.sign``).
4. ``issuing``: inside one writer transaction the next number of the series is taken, written
   with the date into the number and date fields, and the agency key signs the whole file
   (``document.issue``); a failure anywhere rolls everything back, so no number is lost.
   Separate attachments are signed by the agency at the top right of page 1.
5. ``deliveries``: the nơi nhận become deliveries (electronic: an edXML package; paper: the
   Sổ gửi văn bản đi bưu điện; internal: a handler), each with its status
   (``document.delivery``).

A recall (thu hồi) or correction (đính chính) is a new document whose ``Relation`` names the
old one; issuing it recalls (freezes) or marks the old one, never altering its content.

The document's ``Drafting`` field holds the workflow::

    {"state": "draft" | "submitted" | "returned" | "approved" | "signed", "paper": bool,
     "drafter": user, "approver": user, "reviewers": [user], "approvals": [user],
     "versions": [{"n", "sha256", "name", "source", "at", "by", "template"?, "placement"?}],
     "steps": [{"at", "by", "action", "comment"?, "version"?}],
     "prepared": {"sha256", "version"}?, "signature": {"sha256", "by", "at", "subject",
     "method"}?}
"""
