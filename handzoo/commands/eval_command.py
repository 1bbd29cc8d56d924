"""``handzoo eval``: metrics of a model (or of a FreiHAND submission) on a dataset split."""

from __future__ import annotations

import typer

from handzoo.commands.console import console as _console
from handzoo.errors import UsageError
from handzoo.files import json_text, write_text_atomic
from handzoo.inference.defaults import DEFAULT_ROOT_DEPTH


def eval_command(
    model: str | None = typer.Argument(None, help="Model name (default: the one recorded in --weights)."),
    weights: str | None = typer.Option(None, "--weights", help="model.safetensors to evaluate."),
    pretrained: bool = typer.Option(
        False, "--pretrained", help="Evaluate the catalogue's published weights of MODEL (`handzoo zoo`)."
    ),
    data: str = typer.Option("freihand", "--data", help="Dataset name."),
    data_root: str | None = typer.Option(
        None, "--data-root", help="Dataset folder (FreiHAND layout; the authors' layout for ge-realworld)."
    ),
    split: str = typer.Option("eval", "--split", help="eval, val or train (ge-realworld: eval or test)."),
    batch_size: int = typer.Option(64, "--batch-size", min=1),
    device: str = typer.Option("auto", "--device", help="auto, cpu, cuda or cuda:N."),
    workers: int = typer.Option(2, "--workers", min=0),
    per_joint: bool = typer.Option(False, "--per-joint", help="Also print the PA error of every joint."),
    out: str | None = typer.Option(
        None, "--out", help="Where to write metrics.json (default: beside the weights)."
    ),
    submission: str | None = typer.Option(
        None, "--submission", help="Score a pred.json/.zip instead of a model."
    ),
    write_submission: str | None = typer.Option(
        None, "--write-submission", help="Also write the predictions as a FreiHAND pred.zip."
    ),
    root_depth: float = typer.Option(
        DEFAULT_ROOT_DEPTH,
        "--root-depth",
        help="Wrist depth in metres used to place predictions in a submission (as in predict).",
    ),
    amp: bool = typer.Option(
        False, "--amp", help="Score at a run's precision on this device (bf16 where native), not float32."
    ),
) -> None:
    """Metrics of a model on a split (PA-MPJPE, MPJPE, AUC; mesh metrics with vertices) or of a submission.

    On a set without training labels (ge-realworld) metrics.json also holds the
    constant pose's PA-MPJPE (``baseline_pa_mpjpe_mm``, the Procrustes mean of the
    synthetic set's training labels, named in ``baseline_from``) and the model's
    ratio to it (``vs_baseline``).
    """
    from pathlib import Path

    console = _console()
    if submission is not None:
        if data_root is None:
            raise UsageError("--submission needs --data-root (the folder with evaluation_xyz.json)")
        from handzoo.submission import score_submission

        scores = score_submission(submission, data_root)
        _print_metrics(console, f"{submission} against {data_root}", scores)
        if out:
            write_text_atomic(out, json_text(scores, indent=2) + "\n", "scores")
        return
    if weights is None and model is None:
        raise UsageError("give a MODEL and/or --weights FILE (or --submission FILE)")
    if weights is not None and pretrained:
        raise UsageError("pass either --weights FILE or --pretrained, not both")
    if pretrained and model is None:
        raise UsageError("--pretrained needs a MODEL name")
    if split not in ("train", "val", "eval", "test"):
        raise UsageError(f"--split must be train, val, eval or test, got {split!r}")
    import torch

    import handzoo
    from handzoo.device import amp_dtype_for, resolve_device
    from handzoo.evaluation import detection_report, per_joint_table, predict, report, score
    from handzoo.runner.datasets import scoring_dataset

    dev = resolve_device(device)
    net = handzoo.create_model(model, pretrained=pretrained, weights=weights)
    net = net.to(dev).eval()
    size = int(net.preprocessing["input_size"][-1])
    dataset = scoring_dataset(data, split, net, data_root)  # weights from a run: that run's split
    from rich.progress import Progress

    with Progress(console=console, transient=True) as bar:
        task = bar.add_task(f"{data}/{split}", total=len(dataset))
        # float32 by default; --amp: a run's own validation precision, so its metrics.json and this agree.
        rows = predict(
            net,
            dataset,
            dev,
            batch_size=batch_size,
            workers=workers,
            amp_dtype=amp_dtype_for(dev, amp),
            progress=lambda n: bar.advance(task, n),
        )
    assert rows is not None
    if write_submission:
        from handzoo.submission import place_root_relative
        from handzoo.submission import write_submission as _write

        # Models predict root-relative joints: scale them to the split's bone
        # length and put the wrist on the optical axis. PA metrics ignore both.
        placed = place_root_relative(
            rows["pred"].double(),
            torch.eye(3).expand(len(rows["pred"]), 3, 3),
            scale=_dataset_scale(dataset),
            root_depth=root_depth,
        )
        _write(write_submission, placed, rows.get("pred_verts"))
        console.print(f"wrote {write_submission} ({len(placed)} predictions)")
    if "gt" not in rows:
        if not write_submission:
            raise UsageError(
                f"{data}/{split} has no ground truth here; pass --write-submission pred.zip to write "
                "predictions for the official server"
            )
        return
    metrics = {**report(score(rows, dev)), **detection_report(rows)}
    metrics["num_samples"] = int(rows["gt"].shape[0])
    metrics.update(_borrowed_baseline(data, dataset, size, rows["gt"], metrics))
    _print_metrics(console, f"{getattr(net, 'handzoo_name', model)} on {data}/{split}", metrics)
    if per_joint:
        from rich.table import Table

        table = Table(box=None, title="PA error per joint (mm)")
        table.add_column("joint")
        table.add_column("mm", justify="right")
        for name, mm in per_joint_table(rows):
            table.add_row(name, f"{mm:.2f}")
        console.print(table)
    target = Path(out) if out else (Path(weights).parent if weights else Path(".")) / "metrics.json"
    if target.is_dir():
        target = target / "metrics.json"
    if weights and not out and target.exists():
        target = target.with_name(f"metrics_{data}_{split}.json")
    write_text_atomic(target, json_text(metrics, indent=2) + "\n", "metrics")
    console.print(f"wrote {target}")


def _borrowed_baseline(data: str, dataset, image_size: int, gt, metrics: dict) -> dict:
    """For a set without training labels: the constant pose's PA-MPJPE (mm), the ratio to it and its source.

    The constant is the Procrustes mean of the training labels of the dataset
    that ``dataset.baseline_data`` names (the synthetic set for ge-realworld),
    as :func:`handzoo.scoring.baseline.constant_baseline` computes it; {} for
    other datasets (a run's metrics.json already holds its own baseline).
    """
    from handzoo.scoring.baseline import baseline_source, constant_baseline, constant_pose_errors

    if baseline_source(data, dataset)[0] == data:
        return {}
    shape, source = constant_baseline(data, dataset, None, image_size)
    base = float(constant_pose_errors(shape, gt).mean()) * 1000.0
    return {
        "baseline_pa_mpjpe_mm": base,
        "vs_baseline": metrics["pa_mpjpe_mm"] / base,
        "baseline_from": f"{source}/train ({data} has no training labels)",
    }


def _dataset_scale(dataset):
    """Per-item FreiHAND bone scale (metres) when the dataset has it, else None."""
    import numpy as np

    scale = getattr(dataset, "scale", None)
    if scale is None or not hasattr(dataset, "annotation_index"):
        return None
    return np.asarray(scale, dtype=float).reshape(-1)[
        [dataset.annotation_index(i) for i in range(len(dataset))]
    ]


def _print_metrics(console, title: str, metrics: dict) -> None:
    from rich.table import Table

    table = Table(box=None, title=title)
    table.add_column("metric")
    table.add_column("value", justify="right")
    for k, v in metrics.items():
        table.add_row(k, f"{v:.4f}" if isinstance(v, float) else str(v))
    console.print(table)


def register(app: typer.Typer) -> None:
    app.command("eval")(eval_command)
