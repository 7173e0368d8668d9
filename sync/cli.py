"""Commands of the sync agent (enrol, sync) and the centre (central …).

`register(main)` adds them to the `luutru` group.

Import only click at module level: heavy imports go inside the command bodies, so that
`luutru --help` stays fast on a small box.
"""

from __future__ import annotations

import click


def register(main: click.Group) -> None:
    """Add this part's commands to the `luutru` group."""
