"""The appliance's side of sync: the agent's cycle (``cycle.py``) over a ``Transport`` (the
HTTP client in ``http.py``), the batches it builds (``outbox.py``), the receipts it keeps
(``receipts.py``), enrolment, the USB stick, its state file and the status the UI reads, and
the replacement of a dead box from the centre (``restore.py``)."""

from .cycle import CycleReport, run_agent, run_once, seconds_until_window

__all__ = ["CycleReport", "run_agent", "run_once", "seconds_until_window"]
