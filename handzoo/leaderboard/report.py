"""Leaderboard output: a rich table, Markdown, CSV, JSON, an HTML page and a scatter plot.

Markdown, JSON and HTML record the seed, the versions (handzoo, torch, timm)
and the hardware (CPU model and cores, GPU name); CSV holds the rows only.
Errors are millimetres, AUC is the PCK area up to 50 mm (FreiHAND's), params
are millions, GFLOPs are of one image at the board's input size (FLOPs = 2 x
MACs) and img/s is forward throughput at the board's batch size.
"""

from __future__ import annotations

import base64
import csv
import html
import io
import json
from pathlib import Path
from typing import Any

from handzoo.leaderboard.evaluate import Leaderboard, Row

# (row attribute, label shown to people, format)
COLUMNS: tuple[tuple[str, str, str], ...] = (
    ("rank", "#", "{}"),
    ("model", "model", "{}"),
    ("weights", "weights", "{}"),
    ("pa_mpjpe_mm", "PA-MPJPE mm", "{:.2f}"),
    ("mpjpe_mm", "MPJPE mm", "{:.2f}"),
    ("auc", "AUC", "{:.3f}"),
    ("params_m", "params M", "{:.2f}"),
    ("gflops", "GFLOPs", "{:.3g}"),
    ("img_per_s", "img/s", "{:.1f}"),
    ("device", "device", "{}"),
)
GFLOPS_NOTE = "GFLOPs: one image at the board's input size, FLOPs = 2 x multiply-accumulates"
FORMATS = ("table", "markdown", "csv", "json")


# Metrics shown by the fixed columns (under other names there).
_SHOWN_METRICS = {"pa_mpjpe_mm", "mpjpe_mm", "auc_pa_0_50mm", "num_samples"}


def columns(board: Leaderboard) -> list[tuple[str, str, str]]:
    """:data:`COLUMNS` plus one column per other metric the rows carry (mesh metrics, plugins' metrics)."""
    extra: list[str] = []
    for row in board.rows:
        extra += [k for k in row.metrics if k not in _SHOWN_METRICS and k not in extra]
    return [*COLUMNS, *((k, k.replace("_mm", " mm"), "{:.4g}") for k in extra)]


def _value(row: Row, key: str) -> Any:
    return getattr(row, key) if hasattr(row, key) else row.metrics.get(key)


def _cells(row: Row, cols: list[tuple[str, str, str]] | None = None) -> list[str]:
    return [
        "-" if _value(row, key) is None else fmt.format(_value(row, key)) for key, _, fmt in (cols or COLUMNS)
    ]


def _context_lines(board: Leaderboard) -> list[tuple[str, str]]:
    env = board.environment
    return [
        ("data", f"{board.dataset}/{board.split}, {board.num_samples} samples at {board.image_size} px"),
        ("batch size", str(board.batch_size)),
        ("seed", str(board.seed)),
        ("versions", f"handzoo {env['handzoo']}, torch {env['torch']}, timm {env['timm']}, "
         f"python {env['python']}"),
        ("hardware", f"{env['cpu']} ({env['cpu_cores']} cores, {env['torch_threads']} torch threads); "
         f"GPU: {env['gpu'] or 'none'}; device {env['device']}"),
        ("platform", str(env["platform"])),
        ("date", str(env["date"])),
    ]


def to_json(board: Leaderboard) -> str:
    """Everything: context, environment, rows (keys as in :data:`COLUMNS` plus all metrics)."""
    payload = board.to_dict()
    payload["columns"] = [key for key, _, _ in columns(board)]
    payload["gflops_convention"] = GFLOPS_NOTE
    return json.dumps(payload, indent=2) + "\n"


def to_csv(board: Leaderboard) -> str:
    """One header line of column keys, then one line per row (full precision)."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    cols = columns(board)
    writer.writerow([key for key, _, _ in cols])
    for row in board.rows:
        writer.writerow([_value(row, key) for key, _, _ in cols])
    return out.getvalue()


def to_markdown(board: Leaderboard) -> str:
    """A heading, the context as a list, the table and the GFLOPs convention."""
    lines = [f"## handzoo leaderboard: {board.dataset}/{board.split}", ""]
    lines += [f"- {k}: {v}" for k, v in _context_lines(board)]
    cols = columns(board)
    lines += ["", "| " + " | ".join(label for _, label, _ in cols) + " |"]
    lines.append("|" + "|".join("---:" if fmt != "{}" else "---" for _, _, fmt in cols) + "|")
    for row in board.rows:
        lines.append("| " + " | ".join(c.replace("|", "\\|") for c in _cells(row, cols)) + " |")
    lines += ["", f"{GFLOPS_NOTE}. Ranked by PA-MPJPE (lower is better).", ""]
    return "\n".join(lines)


def rich_table(board: Leaderboard) -> Any:
    """A :class:`rich.table.Table` of the rows, titled with the data and the device."""
    from rich.table import Table

    env = board.environment
    table = Table(
        title=f"{board.dataset}/{board.split}: {board.num_samples} samples at {board.image_size} px, "
        f"batch {board.batch_size}, seed {board.seed}",
        caption=f"handzoo {env['handzoo']}, torch {env['torch']}, timm {env['timm']}; {env['cpu']} "
        f"({env['cpu_cores']} cores); GPU: {env['gpu'] or 'none'}. {GFLOPS_NOTE}.",
        box=None,
    )
    cols = columns(board)
    for _, label, fmt in cols:
        table.add_column(label, justify="left" if fmt == "{}" else "right", overflow="fold")
    for row in board.rows:
        table.add_row(*_cells(row, cols))
    return table


def to_text(board: Leaderboard) -> str:
    """The rich table rendered as plain text."""
    from rich.console import Console

    console = Console(file=io.StringIO(), width=200, color_system=None)
    console.print(rich_table(board))
    return console.file.getvalue()


def render(board: Leaderboard, fmt: str) -> str:
    """The board in ``fmt`` (table, markdown, csv or json)."""
    renderers = {"table": to_text, "markdown": to_markdown, "csv": to_csv, "json": to_json}
    if fmt not in renderers:
        raise ValueError(f"unknown format {fmt!r}; use one of {', '.join(FORMATS)}")
    return renderers[fmt](board)


def scatter_png(board: Leaderboard) -> bytes:
    """PNG bytes: PA-MPJPE (mm, down is better) against throughput (img/s, log scale, right is better)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4.5), dpi=100)
    try:
        xs = [r.img_per_s for r in board.rows]
        ys = [r.pa_mpjpe_mm for r in board.rows]
        sizes = [20 + 30 * r.params_m ** 0.5 for r in board.rows]
        ax.scatter(xs, ys, s=sizes, alpha=0.7)
        for r in board.rows:
            ax.annotate(
                f"{r.rank}. {r.model} ({Path(r.weights).name or r.weights})",
                (r.img_per_s, r.pa_mpjpe_mm),
                textcoords="offset points",
                xytext=(6, 4),
                fontsize=8,
            )
        ax.set_xscale("log")
        ax.margins(x=0.25, y=0.15)  # room for the labels right of the points
        ax.set_xlabel(f"throughput, images/s (batch {board.batch_size}, {board.environment['device']})")
        ax.set_ylabel("PA-MPJPE, mm (lower is better)")
        ax.set_title(f"{board.dataset}/{board.split} at {board.image_size} px (marker area ~ params)")
        ax.grid(True, which="both", alpha=0.3)
        fig.tight_layout()
        out = io.BytesIO()
        fig.savefig(out, format="png")
    finally:
        plt.close(fig)
    return out.getvalue()


def to_html(board: Leaderboard, png: bytes | None = None) -> str:
    """A self-contained page: context, the table and the scatter plot embedded as base64 PNG."""
    png = png if png is not None else scatter_png(board)
    esc = html.escape
    cols = columns(board)
    head = "".join(f"<th>{esc(label)}</th>" for _, label, _ in cols)
    body = "".join(
        "<tr>" + "".join(f"<td>{esc(c)}</td>" for c in _cells(row, cols)) + "</tr>\n" for row in board.rows
    )
    context = "".join(f"<li><b>{esc(k)}</b>: {esc(v)}</li>" for k, v in _context_lines(board))
    image = base64.b64encode(png).decode("ascii")
    title = f"handzoo leaderboard: {board.dataset}/{board.split}"
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>{esc(title)}</title>
<style>body{{font-family:sans-serif;margin:2em}}table{{border-collapse:collapse}}
td,th{{padding:.25em .7em;border-bottom:1px solid #ddd;text-align:right}}
td:nth-child(2),td:nth-child(3),th{{text-align:left}}</style></head>
<body><h1>{esc(title)}</h1>
<ul>{context}</ul>
<table><thead><tr>{head}</tr></thead><tbody>
{body}</tbody></table>
<p>{esc(GFLOPS_NOTE)}. Ranked by PA-MPJPE (lower is better).</p>
<img alt="PA-MPJPE against throughput" src="data:image/png;base64,{image}">
</body></html>
"""
