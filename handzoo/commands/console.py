"""The rich consoles every command prints to."""

from __future__ import annotations


def console(stderr: bool = False):
    from rich.console import Console

    console = Console(stderr=stderr, soft_wrap=False)
    if not console.is_terminal:  # pipes and logs: do not wrap tables at 80 columns
        console.width = 200
    return console
