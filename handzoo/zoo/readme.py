"""The "Model zoo" table of docs/models.md, generated from zoo.yaml.

``python -m handzoo.zoo.readme docs/models.md`` rewrites the block between the
markers; a test fails when the page drifts from the catalogue.
"""

from __future__ import annotations

import sys
from pathlib import Path

from handzoo.zoo.schema import Zoo

START = "<!-- zoo-table:start (generated from zoo.yaml by `python -m handzoo.zoo.readme docs/models.md`) -->"
END = "<!-- zoo-table:end -->"


def render_table(zoo: Zoo) -> str:
    """Markdown: one row per architecture with its recipe, references and published weights."""
    lines = [
        "| model | description | recipe | reported PA-MPJPE (mm, FreiHAND eval) | handzoo weights |",
        "|---|---|---|---|---|",
    ]
    for name, arch in zoo.architectures.items():
        refs = (
            "; ".join(f"{r.value:g} ({r.source})" for r in arch.references if r.metric == "pa_mpjpe_mm")
            or "-"
        )
        weights = (
            "; ".join(
                f"`{name}:{w.tag}` "
                + ", ".join(
                    f"{ds}/{split} {vals['pa_mpjpe_mm']:.2f}"
                    for ds, splits in w.metrics.items()
                    for split, vals in splits.items()
                    if "pa_mpjpe_mm" in vals
                )
                for w in arch.weights
            )
            or "-"
        )
        lines.append(f"| `{name}` | {arch.description} | {arch.recipe or '-'} | {refs} | {weights} |")
    return "\n".join(lines)


def replace_block(readme: str, table: str) -> str:
    if START not in readme or END not in readme:
        raise ValueError("the page has no zoo-table markers")
    head, rest = readme.split(START, 1)
    _, tail = rest.split(END, 1)
    return f"{head}{START}\n{table}\n{END}{tail}"


def main(argv: list[str] | None = None) -> int:
    from handzoo.zoo.catalogue import load_zoo

    args = sys.argv[1:] if argv is None else argv
    path = Path(args[0] if args else "docs/models.md")
    path.write_text(replace_block(path.read_text(), render_table(load_zoo())))
    print(f"updated the model zoo table in {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
