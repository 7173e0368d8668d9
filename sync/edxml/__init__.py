"""edXML transport: how packages reach the box and status messages leave it.

A connector is transport only (``connector.Connector``): it lists what is waiting, hands over
the bytes, is told when a package is safely in the inbox (or refused), and sends what the
box produced. The work of taking a package in is ``appliance.edxml.intake``; ``exchange``
joins the two (``run_once``, and the loop ``luutru serve`` runs). Connectors live in sync/
because they are the box's link to the outside, like the sync agent's transports.

- ``folder``: an exchange folder (or a USB stick) that the provincial e-office system reads
  and writes;
- ``http``: a provincial LGSP over HTTP (request and response shapes in its docstring).
"""
