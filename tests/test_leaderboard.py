"""``handzoo leaderboard``: two tiny runs (one through the zoo) ranked on one split, in every format.

The numbers must equal ``handzoo eval``'s for the same weights and an
independent recomputation (a plain forward pass + handzoo.metrics); the
reports must carry the right columns, the seed, the versions and the hardware.
"""

from __future__ import annotations

import base64
import csv
import io
import json
from pathlib import Path

import pytest
import torch

import handzoo
from handzoo.leaderboard import (
    COLUMNS,
    candidates_from_runs,
    candidates_from_zoo,
    run_leaderboard,
    to_csv,
    to_json,
    to_markdown,
)
from handzoo.leaderboard.report import to_text
from handzoo.metrics import pa_mpjpe
from handzoo.publish import publish_run
from tests.test_publish import (
    DATASET,
    IMAGE,
    ROOT,
    HubHands,
    cli,
    parameter_count,
    reference_gflops,
    toy_dataset,
    trained_run,
    val_predictions,
)

KEYS = [key for key, _, _ in COLUMNS]
LABELS = ["#", "model", "weights", "PA-MPJPE mm", "± 95% mm", "vs constant", "MPJPE mm", "AUC", "params M",
          "GFLOPs", "img/s", "device"]


@pytest.fixture(autouse=True)
def _dataset():
    with toy_dataset():
        yield


@pytest.fixture(scope="module")
def runs(tmp_path_factory) -> tuple[Path, Path]:
    """Two finished runs of different length and learning rate."""
    return trained_run(tmp_path_factory, steps=3, lr=1e-3), trained_run(tmp_path_factory, steps=3, lr=1e-4)


@pytest.fixture(scope="module")
def board(runs, tmp_path_factory):
    """Run A published into a zoo copy and pulled by the hub; run B as a folder; ranked once."""
    from handzoo.zoo.catalogue import load_zoo

    run_a, run_b = runs
    tmp = tmp_path_factory.mktemp("board")
    zoo = tmp / "zoo.yaml"
    zoo.write_text((ROOT / "zoo.yaml").read_text())
    publish_run(run_a, zoo_file=zoo, dest=tmp / "pub", tag="a")
    with toy_dataset():
        candidates = candidates_from_zoo("resnet1?:a", zoo=load_zoo(str(zoo)), progress=False)
        candidates += candidates_from_runs([run_b])
        return run_leaderboard(candidates, DATASET, "val", device="cpu", batch_size=8, bench_seconds=0)


def eval_metrics(weights: Path, out: Path) -> dict:
    code, _, err = cli("eval", "--weights", str(weights), "--data", DATASET, "--split", "val",
                       "--device", "cpu", "--workers", "0", "--batch-size", "8", "--out", str(out))
    assert code == 0, err
    return json.loads(out.read_text())


def test_zoo_weights_and_run_folders_ranked_like_handzoo_eval(runs, board, tmp_path):
    run_a, run_b = runs
    result = json.loads(to_json(board))
    expected = {
        "a": eval_metrics(run_a / "model.safetensors", tmp_path / "a.json"),
        str(run_b): eval_metrics(run_b / "model.safetensors", tmp_path / "b.json"),
    }
    order = sorted(expected, key=lambda k: expected[k]["pa_mpjpe_mm"])
    assert [r["weights"] for r in result["rows"]] == order
    assert [r["rank"] for r in result["rows"]] == [1, 2]
    gflops = reference_gflops(handzoo.create_model("resnet18", image_size=IMAGE), IMAGE)
    for row in result["rows"]:
        ref = expected[row["weights"]]
        assert row["model"] == "resnet18" and row["device"] == "cpu" and row["num_samples"] == 24
        assert row["pa_mpjpe_mm"] == pytest.approx(ref["pa_mpjpe_mm"], rel=1e-9)
        assert row["mpjpe_mm"] == pytest.approx(ref["mpjpe_mm"], rel=1e-9)
        assert row["auc"] == pytest.approx(ref["auc_pa_0_50mm"], rel=1e-9)
        assert row["params_m"] * 1e6 == pytest.approx(parameter_count(run_a / "model.safetensors"))
        assert row["gflops"] == pytest.approx(gflops, rel=1e-5)
        assert row["img_per_s"] > 0
    assert result["columns"] == KEYS
    context = (result["dataset"], result["split"], result["image_size"], result["seed"])
    assert context == (DATASET, "val", IMAGE, 0)


def test_markdown_csv_and_table_carry_the_columns_and_the_context(runs, board):
    # An independent recomputation: one plain forward pass over the split, then PA-MPJPE.
    gt = HubHands("val").joints3d.double()
    for row, run in zip(sorted(board.rows, key=lambda r: r.weights != "a"), runs, strict=True):
        pred = val_predictions(handzoo.create_model(weights=run / "model.safetensors")).double()
        assert row.pa_mpjpe_mm == pytest.approx(float(pa_mpjpe(pred, gt - gt[:, :1]).mean()) * 1000, rel=1e-5)
    assert board.rows[0].pa_mpjpe_mm <= board.rows[1].pa_mpjpe_mm

    table = list(csv.reader(io.StringIO(to_csv(board))))
    assert table[0] == KEYS and len(table) == 3
    assert [float(r[3]) for r in table[1:]] == [r.pa_mpjpe_mm for r in board.rows]

    md = to_markdown(board)
    assert "| " + " | ".join(LABELS) + " |" in md
    rows = [ln for ln in md.splitlines() if ln.startswith(("| 1 ", "| 2 "))]
    assert len(rows) == 2 and f"| {board.rows[0].pa_mpjpe_mm:.2f} |" in rows[0]
    env = board.environment
    for text in ("- seed: 0", f"torch {torch.__version__}", f"timm {env['timm']}", env["cpu"], "GPU: none"):
        assert text in md, text
    assert "FLOPs = 2 x multiply-accumulates" in md
    text = to_text(board)
    assert "PA-MPJPE mm" in text and str(runs[1]) in text


def test_cli_writes_json_html_and_png_and_refuses_bad_usage(runs, tmp_path):
    from PIL import Image

    run_a, run_b = runs
    out, html, png = tmp_path / "board.json", tmp_path / "board.html", tmp_path / "board.png"
    code, _, err = cli("leaderboard", "--runs", str(run_a), "--runs", str(run_b), "--data", DATASET,
                       "--split", "val", "--device", "cpu", "--batch-size", "4", "--limit", "5",
                       "--bench-seconds", "0", "--format", "json", "--out", str(out), "--html", str(html),
                       "--png", str(png))
    assert code == 0, err
    result = json.loads(out.read_text())
    assert result["num_samples"] == 5 and result["columns"] == KEYS and len(result["rows"]) == 2
    assert {r["weights"] for r in result["rows"]} == {str(run_a), str(run_b)}
    env = result["environment"]
    assert env["handzoo"] == handzoo.__version__ and env["torch"] == torch.__version__
    assert env["timm"] and env["cpu"] and env["cpu_cores"] >= 1 and env["seed"] == 0 and "gpu" in env
    page = html.read_text()
    assert all(label in page for label in ("PA-MPJPE mm", "img/s", "GFLOPs", "seed", env["cpu"]))
    embedded = page.split("data:image/png;base64,", 1)[1].split('"', 1)[0]
    assert base64.b64decode(embedded) == png.read_bytes()
    assert Image.open(png).size == (750, 480)

    code, _, err = cli("leaderboard", "--data", DATASET, "--split", "val")
    assert code == 2 and "give --models PATTERN and/or --runs DIR" in err
    code, _, err = cli("leaderboard", "--models", "nothing*", "--data", DATASET, "--split", "val")
    assert code == 2 and "matches no published weights" in err and err.count("\n") == 1
    code, _, err = cli("leaderboard", "--runs", str(run_a), "--data", DATASET, "--split", "val",
                       "--format", "xml")
    assert code == 2 and "use one of table, markdown, csv, json" in err


def test_every_metric_a_row_carries_gets_a_column(board):
    """Registered metrics beyond the fixed columns (mesh metrics, plugins') are shown, not dropped."""
    import copy

    from handzoo.leaderboard.report import to_html

    extra = copy.deepcopy(board)
    for i, row in enumerate(extra.rows):
        row.metrics["worst_joint_mm"] = 40.0 + i
    table = list(csv.reader(io.StringIO(to_csv(extra))))
    assert table[0] == [*KEYS, "worst_joint_mm"]
    assert [float(r[-1]) for r in table[1:]] == [40.0, 41.0]
    assert "worst_joint mm" in to_markdown(extra) and ">worst_joint mm</th>" in to_html(extra, png=b"")
    assert json.loads(to_json(extra))["columns"][-1] == "worst_joint_mm"


def test_the_constant_baseline_confidence_intervals_and_references_come_with_the_board(runs, board):
    """Independent references: the Procrustes mean of the training labels scored by the metrics; numpy CIs."""
    import numpy as np

    from handzoo.leaderboard.evaluate import reported_references
    from handzoo.leaderboard.report import to_html
    from handzoo.scoring.baseline import procrustes_mean

    gt = HubHands("val").joints3d.double()
    shape = procrustes_mean(HubHands("train").joints3d.double())
    errors = pa_mpjpe(shape.expand_as(gt), gt).numpy()
    assert board.baseline_pa_mpjpe_mm == pytest.approx(errors.mean() * 1000, rel=1e-6)  # gt passes float32
    assert board.baseline_ci95_mm == pytest.approx(1.96 * errors.std(ddof=1) / np.sqrt(len(errors)) * 1000)
    for row, run in zip(sorted(board.rows, key=lambda r: r.weights != "a"), runs, strict=True):
        pred = val_predictions(handzoo.create_model(weights=run / "model.safetensors")).double()
        per = pa_mpjpe(pred, gt - gt[:, :1]).numpy()
        assert row.pa_ci95_mm == pytest.approx(1.96 * per.std(ddof=1) / np.sqrt(len(per)) * 1000, rel=1e-4)
        assert row.vs_baseline == pytest.approx(row.pa_mpjpe_mm / board.baseline_pa_mpjpe_mm)
    md = to_markdown(board)
    assert f"| - | constant pose (baseline) | Procrustes mean of the training labels | " \
        f"{board.baseline_pa_mpjpe_mm:.2f} |" in md and "AUC: area under the PCK curve" in md
    page = to_html(board, png=b"")
    assert "constant pose (baseline)" in page and "click a column to sort" in page and "<script>" in page
    # FreiHAND's evaluation split: the catalogue's reported numbers (the seed's 10.09 mm), marked as reported
    seed = [r for r in reported_references("freihand", "eval") if r.model == "resnet101"]
    assert seed and seed[0].pa_mpjpe_mm == pytest.approx(10.09)
    assert reported_references(DATASET, "val") == board.references == []

