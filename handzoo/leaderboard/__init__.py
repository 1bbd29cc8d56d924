"""``handzoo leaderboard``: many models, one dataset split, one table.

::

    from handzoo.leaderboard import candidates_from_runs, run_leaderboard, render
    board = run_leaderboard(candidates_from_runs(["runs/a", "runs/b"]), "freihand", "eval",
                            data_root="FreiHAND_pub_v2")
    print(render(board, "markdown"))
"""

from handzoo.leaderboard.evaluate import (
    Candidate,
    Leaderboard,
    Row,
    candidates_from_runs,
    candidates_from_zoo,
    environment_info,
    measure_throughput,
    run_leaderboard,
)
from handzoo.leaderboard.report import (
    COLUMNS,
    FORMATS,
    render,
    rich_table,
    scatter_png,
    to_csv,
    to_html,
    to_json,
    to_markdown,
)

__all__ = [
    "COLUMNS",
    "FORMATS",
    "Candidate",
    "Leaderboard",
    "Row",
    "candidates_from_runs",
    "candidates_from_zoo",
    "environment_info",
    "measure_throughput",
    "render",
    "rich_table",
    "run_leaderboard",
    "scatter_png",
    "to_csv",
    "to_html",
    "to_json",
    "to_markdown",
]
