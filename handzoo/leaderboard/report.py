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
from pathlib import Path
from typing import Any

from handzoo.files import json_text
from handzoo.leaderboard.evaluate import Leaderboard, Row

# (row attribute, label shown to people, format)
COLUMNS: tuple[tuple[str, str, str], ...] = (
    ("rank", "#", "{}"),
    ("model", "model", "{}"),
    ("weights", "weights", "{}"),
    ("pa_mpjpe_mm", "PA-MPJPE mm", "{:.2f}"),
    ("pa_ci95_mm", "± 95% mm", "{:.2f}"),
    ("vs_baseline", "vs constant", "{:.2f}x"),
    ("mpjpe_mm", "MPJPE mm", "{:.2f}"),
    ("auc", "AUC", "{:.3f}"),
    ("params_m", "params M", "{:.2f}"),
    ("gflops", "GFLOPs", "{:.3g}"),
    ("img_per_s", "img/s", "{:.1f}"),
    ("device", "device", "{}"),
)
GFLOPS_NOTE = "GFLOPs: one image at the board's input size, FLOPs = 2 x multiply-accumulates"
AUC_NOTE = (
    "AUC: area under the PCK curve of Procrustes-aligned joints for thresholds 0-50 mm "
    "(FreiHAND's protocol), 1 is perfect"
)
CI_NOTE = "± 95%: half-width of the 95 % confidence interval of the PA-MPJPE mean (1.96 standard errors)"
BASELINE_NOTE = (
    "vs constant: PA-MPJPE over that of the best constant pose (the Procrustes mean of the training "
    "labels) on the same samples; below 1 the model has learned articulation"
)
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


def reference_cells(board: Leaderboard, cols: list[tuple[str, str, str]]) -> list[list[str]]:
    """Rows for the constant baseline and the reported numbers, for people to read beside the ranks."""
    out = []
    if board.baseline_pa_mpjpe_mm is not None:
        values = {
            "rank": "-",
            "model": "constant pose (baseline)",
            "weights": f"Procrustes mean of the {board.baseline_from} training labels"
            if board.baseline_from
            else "Procrustes mean of the training labels",
            "pa_mpjpe_mm": f"{board.baseline_pa_mpjpe_mm:.2f}",
            "pa_ci95_mm": "-" if board.baseline_ci95_mm is None else f"{board.baseline_ci95_mm:.2f}",
            "vs_baseline": "1.00x",
        }
        out.append([values.get(key, "-") for key, _, _ in cols])
    for ref in board.references:
        ratio = f"{ref.pa_mpjpe_mm / board.baseline_pa_mpjpe_mm:.2f}x" if board.baseline_pa_mpjpe_mm else "-"
        values = {
            "rank": "ref",
            "model": ref.model,
            "weights": f"reported: {ref.source}",
            "pa_mpjpe_mm": f"{ref.pa_mpjpe_mm:.2f}",
            "vs_baseline": ratio,
        }
        out.append([values.get(key, "-") for key, _, _ in cols])
    return out


def _notes(board: Leaderboard) -> list[str]:
    notes = [GFLOPS_NOTE, AUC_NOTE, CI_NOTE, BASELINE_NOTE]
    if board.baseline_note:
        notes.append(board.baseline_note)
    if board.references:
        notes.append("rows marked ref are reported elsewhere (zoo.yaml references), not measured here")
    return notes


def _context_lines(board: Leaderboard) -> list[tuple[str, str]]:
    env = board.environment
    return [
        ("data", f"{board.dataset}/{board.split}, {board.num_samples} samples at {board.image_size} px"),
        ("batch size", str(board.batch_size)),
        ("seed", str(board.seed)),
        (
            "versions",
            f"handzoo {env['handzoo']}, torch {env['torch']}, timm {env['timm']}, python {env['python']}",
        ),
        (
            "hardware",
            f"{env['cpu']} ({env['cpu_cores']} cores, {env['torch_threads']} torch threads); "
            f"GPU: {env['gpu'] or 'none'}; device {env['device']}",
        ),
        ("platform", str(env["platform"])),
        ("date", str(env["date"])),
    ]


def to_json(board: Leaderboard) -> str:
    """Everything: context, environment, rows (keys as in :data:`COLUMNS` plus all metrics)."""
    payload = board.to_dict()
    payload["columns"] = [key for key, _, _ in columns(board)]
    payload["gflops_convention"] = GFLOPS_NOTE
    return json_text(payload, indent=2) + "\n"


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
    for cells in [*(_cells(row, cols) for row in board.rows), *reference_cells(board, cols)]:
        lines.append("| " + " | ".join(c.replace("|", "\\|") for c in cells) + " |")
    lines += ["", *(f"- {note}." for note in _notes(board)), "", "Ranked by PA-MPJPE (lower is better).", ""]
    return "\n".join(lines)


def rich_table(board: Leaderboard) -> Any:
    """A :class:`rich.table.Table` of the rows, titled with the data and the device."""
    from rich.table import Table

    env = board.environment
    table = Table(
        title=f"{board.dataset}/{board.split}: {board.num_samples} samples at {board.image_size} px, "
        f"batch {board.batch_size}, seed {board.seed}",
        caption=f"handzoo {env['handzoo']}, torch {env['torch']}, timm {env['timm']}; {env['cpu']} "
        f"({env['cpu_cores']} cores); GPU: {env['gpu'] or 'none'}. " + ". ".join(_notes(board)) + ".",
        box=None,
    )
    cols = columns(board)
    for _, label, fmt in cols:
        table.add_column(label, justify="left" if fmt == "{}" else "right", overflow="fold")
    for row in board.rows:
        table.add_row(*_cells(row, cols))
    for cells in reference_cells(board, cols):
        table.add_row(*cells, style="dim")
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
    """PNG bytes: PA-MPJPE (mm, down is better) against throughput (img/s, log scale, right is better).

    Each point has its 95 % confidence interval as an error bar; the constant
    baseline and the reported references are horizontal lines; the error axis
    starts at 0, so a difference the sample count cannot resolve does not look
    decisive; marker area follows the parameter count, with a legend.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    def area(params_m: float) -> float:
        return 20 + 30 * params_m**0.5

    fig, ax = plt.subplots(figsize=(7.5, 4.8), dpi=100)
    try:
        xs = [r.img_per_s for r in board.rows]
        ys = [r.pa_mpjpe_mm for r in board.rows]
        ax.errorbar(
            xs, ys, yerr=[r.pa_ci95_mm or 0.0 for r in board.rows], fmt="none", ecolor="0.5", capsize=3, lw=1
        )
        ax.scatter(xs, ys, s=[area(r.params_m) for r in board.rows], alpha=0.7, zorder=3)
        for r in board.rows:
            ax.annotate(
                f"{r.rank}. {r.model} ({Path(r.weights).name or r.weights})",
                (r.img_per_s, r.pa_mpjpe_mm),
                textcoords="offset points",
                xytext=(6, 4),
                fontsize=8,
            )
        lines = [(board.baseline_pa_mpjpe_mm, "constant pose (baseline)", "--", "0.35")]
        lines += [
            (ref.pa_mpjpe_mm, f"{ref.model}: reported ({ref.source})", ":", "tab:green")
            for ref in board.references
        ]
        for value, label, style, colour in lines:
            if value is not None:
                ax.axhline(value, ls=style, color=colour, lw=1)
                ax.annotate(
                    label,
                    (0.01, value),
                    xycoords=("axes fraction", "data"),
                    xytext=(0, 3),
                    textcoords="offset points",
                    fontsize=8,
                    color=colour,
                )
        top = max([*ys, *(v for v, *_ in lines if v is not None)], default=1.0)
        ax.set_ylim(0, top * 1.2)
        ax.set_xscale("log")
        ax.margins(x=0.25)  # room for the labels right of the points
        ax.set_xlabel(f"throughput, images/s (batch {board.batch_size}, {board.environment['device']})")
        ax.set_ylabel("PA-MPJPE, mm (lower is better)")
        ax.set_title(
            f"{board.dataset}/{board.split}: {board.num_samples} samples at {board.image_size} px "
            "(bars: 95 % CI)",
            fontsize=10,
        )
        sizes = (10, 25, 50)  # millions of parameters: ResNet18, ResNet50, ResNet152 are 11, 24, 58
        handles = [ax.scatter([], [], s=area(m), color="tab:blue", alpha=0.7) for m in sizes]
        ax.legend(
            handles,
            [f"{m:g} M params" for m in sizes],
            loc="lower right",
            fontsize=8,
            labelspacing=1.2,
            borderpad=0.8,
            title="marker area",
            title_fontsize=8,
        )
        ax.grid(True, which="both", alpha=0.3)
        fig.tight_layout()
        out = io.BytesIO()
        fig.savefig(out, format="png")
    finally:
        plt.close(fig)
    return out.getvalue()


_SORT_SCRIPT = """
document.querySelectorAll("table.board th").forEach((th, col) => th.addEventListener("click", () => {
  const body = th.closest("table").tBodies[0];
  const key = r => { const t = r.cells[col].textContent.replace(/x$/, ""); const v = parseFloat(t);
                     return isNaN(v) ? t : v; };
  const up = th.dataset.order !== "asc"; th.dataset.order = up ? "asc" : "desc";
  [...body.rows].sort((a, b) => { const x = key(a), y = key(b);
    return (x < y ? -1 : x > y ? 1 : 0) * (up ? 1 : -1); }).forEach(r => body.appendChild(r));
}));
"""


def to_html(board: Leaderboard, png: bytes | None = None) -> str:
    """A self-contained page: context, the table (sorted by clicking a column) and the plot as base64 PNG."""
    png = png if png is not None else scatter_png(board)
    esc = html.escape
    cols = columns(board)
    head = "".join(f'<th title="sort by {esc(label)}">{esc(label)}</th>' for _, label, _ in cols)
    body = "".join(
        "<tr>" + "".join(f"<td>{esc(c)}</td>" for c in _cells(row, cols)) + "</tr>\n" for row in board.rows
    )
    refs = "".join(
        '<tr class="ref">' + "".join(f"<td>{esc(c)}</td>" for c in cells) + "</tr>\n"
        for cells in reference_cells(board, cols)
    )
    context = "".join(f"<li><b>{esc(k)}</b>: {esc(v)}</li>" for k, v in _context_lines(board))
    notes = "".join(f"<li>{esc(n)}</li>" for n in _notes(board))
    image = base64.b64encode(png).decode("ascii")
    title = f"handzoo leaderboard: {board.dataset}/{board.split}"
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>{esc(title)}</title>
<style>body{{font-family:sans-serif;margin:2em}}table{{border-collapse:collapse}}
td,th{{padding:.25em .7em;border-bottom:1px solid #ddd;text-align:right}}
th{{cursor:pointer}}tr.ref td{{color:#666;font-style:italic}}
td:nth-child(2),td:nth-child(3),th{{text-align:left}}</style></head>
<body><h1>{esc(title)}</h1>
<ul>{context}</ul>
<table class="board"><thead><tr>{head}</tr></thead><tbody>
{body}</tbody><tbody>
{refs}</tbody></table>
<p>Ranked by PA-MPJPE (lower is better); click a column to sort by it.</p>
<ul>{notes}</ul>
<img alt="PA-MPJPE against throughput" src="data:image/png;base64,{image}">
<script>{_SORT_SCRIPT}</script>
</body></html>
"""
