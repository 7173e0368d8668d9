"""Options every part's commands share."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import click

F = TypeVar("F", bound=Callable[..., Any])


def data_option(fn: F) -> F:
    """``--data DIR``: the appliance's data folder."""
    return click.option(
        "--data",
        "data",
        type=click.Path(file_okay=False, path_type=Path),
        default=None,
        help="Data folder (default: $LUUTRU_DATA, then ./var/appliance).",
    )(fn)
