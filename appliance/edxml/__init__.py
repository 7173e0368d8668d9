"""edXML (QCVN 102:2016/BTTTT, amended 2022): electronic documents in and out.

- ``parse``: an edXML package as found in the wild (both namespaces), read with a hardened
  parser and checked against the field rules (spec §7.1), refused with a clear reason;
- ``build``: packages and status messages written by the box; ``dsig``: their XML-DSig
  (signxml) and the check of a received one;
- ``doctypes``: QCVN 102 document types → Circular 05 ``typeName`` codes (versioned data);
- ``trust``: the managed trust roots and cached revocation data (offline re-verification);
- ``verify``: every signature of a package checked before registration, with a report;
- ``inbox``: the electronic inbox, a projection of the log (``edxml.*`` entries);
- ``intake``: import, register, return, export — what the CLI, the UI and the connectors call.

The transports (an exchange folder, a provincial LGSP over HTTP) are in ``sync/edxml``.
"""
