"""``handzoo list`` and ``handzoo plugins``: what the registry holds and which plugins filled it."""

from __future__ import annotations

import json

import typer

from handzoo.commands.console import console as _console
from handzoo.errors import UsageError

PLURALS = {
    "model": "models",
    "backbone": "backbones",
    "head": "heads",
    "augmenter": "augmenters",
    "metric": "metrics",
    "dataset": "datasets",
    "loss": "losses",
    "detector": "detectors",
}

KIND_ALIASES = {
    "model": "model",
    "models": "model",
    "backbone": "backbone",
    "backbones": "backbone",
    "head": "head",
    "heads": "head",
    "augmenter": "augmenter",
    "augmenters": "augmenter",
    "metric": "metric",
    "metrics": "metric",
    "dataset": "dataset",
    "datasets": "dataset",
    "loss": "loss",
    "losses": "loss",
    "detector": "detector",
    "detectors": "detector",
}


def list_command(
    kind: str | None = typer.Argument(
        None,
        help="models, backbones, heads, augmenters, metrics, datasets, losses or detectors (default: all).",
    ),
    pattern: str = typer.Argument("*", help="fnmatch pattern, e.g. 'resnet*'."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON instead of a table."),
) -> None:
    """List registered models, backbones, heads, augmenters, metrics, datasets, losses or detectors."""
    from handzoo.plugins import get_registry
    from handzoo.registry import KINDS

    if kind is not None and kind not in KIND_ALIASES:
        if any(c in kind for c in "*?[") and pattern == "*":
            kind, pattern = None, kind  # `handzoo list 'resnet*'` searches every kind
        else:
            raise UsageError(
                f"unknown kind {kind!r}; expected one of models, backbones, heads, augmenters, "
                "metrics, datasets, losses, detectors"
            )
    kinds = [KIND_ALIASES[kind]] if kind else list(KINDS)
    registry = get_registry()
    entries = [e for k in kinds for e in registry.entries(k, pattern)]
    published = _published_tags() if "model" in kinds else {}
    if as_json:
        rows = [e.to_json() for e in entries]
        for row in rows:
            if row["kind"] == "model":
                row["weights"] = published.get(row["name"], [])
        typer.echo(json.dumps(rows, indent=2))
        return
    from rich.table import Table

    table = Table(title=None, show_lines=False, box=None, pad_edge=False)
    if len(kinds) > 1:
        table.add_column("kind", style="cyan")
    for col in ("name", "plugin", "weights" if "model" in kinds else None, "description"):
        if col is not None:
            table.add_column(col, style="bold" if col == "name" else None, overflow="fold")
    for e in entries:
        row = [e.name, e.plugin]
        if "model" in kinds:
            row.append(", ".join(published.get(e.name, [])) or "-" if e.kind == "model" else "")
        row.append(e.description)
        table.add_row(*([e.kind, *row] if len(kinds) > 1 else row))
    console = _console()
    if entries:
        console.print(table)
    else:
        console.print(f"no {' or '.join(k + 's' for k in kinds)} match {pattern!r}")


def _published_tags() -> dict[str, list[str]]:
    """Model name -> tags of its published weights in the catalogue (core and plugins')."""
    from handzoo.errors import HandzooError
    from handzoo.zoo import load_zoo

    try:
        zoo = load_zoo()
    except HandzooError:  # a broken catalogue must not break listing; `handzoo zoo` says what is wrong
        return {}
    return {name: [w.tag for w in arch.weights] for name, arch in zoo.architectures.items() if arch.weights}


def plugins_command(
    as_json: bool = typer.Option(False, "--json", help="Print JSON instead of a table."),
) -> None:
    """Show the plugins found: name, version, hooks, what they registered, errors."""
    from handzoo.plugins import get_host

    _published_tags()  # reads the catalogues: an entry a plugin's catalogue had refused is in its errors
    infos = list(get_host().plugins.values())
    if as_json:
        typer.echo(json.dumps([i.to_json() for i in infos], indent=2))
        return
    from rich.table import Table

    table = Table(box=None, pad_edge=False)
    for col in ("plugin", "distribution", "version", "status", "hooks", "registered", "errors"):
        table.add_column(col, overflow="fold")
    for i in infos:
        status = {"loaded": "[green]loaded[/]", "failed": "[red]failed[/]", "refused": "[red]refused[/]"}.get(
            i.status, i.status
        )
        table.add_row(
            i.name + (" (first-party)" if i.first_party else ""),
            i.distribution or "-",
            i.version or "-",
            status,
            ", ".join(h.removeprefix("register_") for h in i.hooks) or "-",
            ", ".join(
                [f"{n} {k if n == 1 else PLURALS[k]}" for k, n in i.registered.items()]
                + [f"command {c}" for c in i.commands]
                + [f"catalogue {c}" for c in i.catalogues]
            )
            or "-",
            "; ".join(i.errors) or "",
        )
    _console().print(table)


def register(app: typer.Typer) -> None:
    app.command("list")(list_command)
    app.command("plugins")(plugins_command)
