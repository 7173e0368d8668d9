"""Lifecycle hooks the OS calls: first-boot, pre-update, post-update, health, shutdown,
factory-reset. Each is ``luutru hook NAME`` and ``python -m firmware_hooks NAME``, prints one
JSON object (``--watch`` prints one per run) and exits with a code from ``ExitCode``:

  0 ok             the hook did its work / the appliance is healthy
  1 failed         the work failed; post-update: roll the update back; health: unhealthy
  2 usage          bad command line (click)
  3 refused        a precondition is not met and NOTHING was changed (a write in flight,
                   unconfirmed records, a province plug-in's veto); safe to retry later
  4 degraded       health only: working, but something needs a technician (sync stale, disk
                   filling, software key); the watchdog is still fed
  5 unprovisioned  there is no data folder yet: run ``luutru provision``

See ``result.py`` for the JSON shape.
"""
