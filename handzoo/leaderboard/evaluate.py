"""Evaluate many models on one dataset split under identical preprocessing.

Every model sees the same images at the same size (``image_size``, default:
the first model's input size), each normalised with the model's own
mean/std, and is scored by the functions behind ``handzoo eval``
(:func:`handzoo.evaluation.predict`, :func:`~handzoo.evaluation.score`,
:func:`~handzoo.evaluation.report`), so a row equals ``handzoo eval``'s numbers
for the same weights. Cost columns: params (millions), GFLOPs of one image at
``image_size`` (FLOPs = 2 x MACs, see :mod:`handzoo.publish`) and forward
throughput in images per second at batch ``batch_size`` on the device.
"""

from __future__ import annotations

import fnmatch
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import torch

from handzoo.errors import UsageError


@dataclass
class Candidate:
    """One set of weights to rank: ``model`` (registered name), a label and a verified safetensors file."""

    model: str
    weights: str  # the zoo tag, the run folder, or "builtin"
    path: Path | None  # None: the model carries its own weights (e.g. MediaPipe's)
    source: str  # "zoo", "run" or "builtin"


@dataclass
class Row:
    """One model's line: errors in mm, AUC in [0,1], params in millions, throughput in images/s."""

    rank: int
    model: str
    weights: str
    pa_mpjpe_mm: float
    mpjpe_mm: float
    auc: float
    params_m: float
    gflops: float
    img_per_s: float
    device: str
    num_samples: int = 0
    metrics: dict[str, float] = field(default_factory=dict)
    # half-width of the 95 % confidence interval of the PA-MPJPE mean (1.96 standard errors), mm
    pa_ci95_mm: float | None = None
    # PA-MPJPE over the constant pose's on the same samples (< 1: the model learned articulation)
    vs_baseline: float | None = None


@dataclass
class Reference:
    """A number reported elsewhere for this dataset split (zoo.yaml ``references``), not measured here."""

    model: str
    pa_mpjpe_mm: float
    source: str
    note: str = ""


@dataclass
class Leaderboard:
    """Rows sorted by PA-MPJPE (best first) plus everything needed to reproduce them."""

    dataset: str
    split: str
    image_size: int
    num_samples: int
    batch_size: int
    seed: int
    environment: dict[str, Any]
    rows: list[Row]
    # the best constant pose (Procrustes mean of the training labels) on the same samples
    baseline_pa_mpjpe_mm: float | None = None
    baseline_ci95_mm: float | None = None
    baseline_note: str = ""
    references: list[Reference] = field(default_factory=list)
    # the dataset whose training labels give the constant when it is not this one (an evaluation-only
    # set such as ge-realworld takes the synthetic set's); "" for the dataset's own training labels
    baseline_from: str = ""

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


# ----------------------------------------------------------------------------- candidates
def candidates_from_zoo(pattern: str, zoo=None, **download: Any) -> list[Candidate]:
    """Every catalogue weight entry whose ``NAME`` or ``NAME:TAG`` matches ``pattern`` (fnmatch),
    and every registered model matching it that brings its own weights (``builtin_weights``).

    The files are pulled (downloaded or found in the cache) and verified;
    ``download`` holds keyword arguments of :func:`handzoo.zoo.hub.fetch`; weights published in
    another format are converted once (:func:`handzoo.pull.pull`).
    """
    from handzoo.plugins import get_registry
    from handzoo.pull import pull
    from handzoo.zoo import load_zoo, zoo_source

    zoo = zoo or load_zoo()
    found = []
    # Models that bring their own weights (registered with builtin_weights=True, e.g. MediaPipe Hands)
    for entry in get_registry().entries("model", pattern):
        if entry.metadata.get("builtin_weights"):
            found.append(Candidate(model=entry.name, weights="builtin", path=None, source="builtin"))
    for name, arch in zoo.architectures.items():
        for entry in arch.weights:
            if fnmatch.fnmatchcase(name, pattern) or fnmatch.fnmatchcase(f"{name}:{entry.tag}", pattern):
                path = pull(f"{name}:{entry.tag}", zoo, **download)[1]  # converted when not safetensors
                found.append(Candidate(model=name, weights=entry.tag, path=path, source="zoo"))
    if not found:
        with_weights = [f"{n}:{w.tag}" for n, a in zoo.architectures.items() for w in a.weights]
        raise UsageError(
            f"--models {pattern!r} matches no published weights in {zoo_source()} "
            f"(published: {', '.join(with_weights) or 'none yet'}); rank run folders with --runs"
        )
    return found


def candidates_from_runs(run_dirs: Sequence[str | Path]) -> list[Candidate]:
    """One candidate per ``handzoo run`` folder (or a model.safetensors file given directly)."""
    from handzoo.weights import read_metadata

    found = []
    for run in run_dirs:
        run = Path(run)
        path = run if run.suffix == ".safetensors" else run / "model.safetensors"
        if not path.is_file():
            raise UsageError(
                f"--runs {run}: no model.safetensors there; give the --out folder of a finished run"
            )
        model = read_metadata(path).get("model")
        if model is None:
            raise UsageError(f"{path} records no model name; it was not written by `handzoo run`")
        found.append(Candidate(model=model, weights=str(run), path=path, source="run"))
    return found


# ----------------------------------------------------------------------------- measurements
def measure_throughput(
    model: torch.nn.Module,
    image_size: int,
    batch_size: int,
    device: torch.device,
    seconds: float = 1.0,
    warmup: int = 2,
    min_iters: int = 3,
    seed: int = 0,
) -> float:
    """Forward passes per second x ``batch_size`` on random (B,3,S,S) input, in eval mode.

    Runs ``warmup`` untimed passes, then at least ``min_iters`` timed ones and
    until ``seconds`` have passed; CUDA is synchronised before reading the clock.
    """
    gen = torch.Generator().manual_seed(seed)
    x = torch.randn(batch_size, 3, image_size, image_size, generator=gen).to(device)
    if device.type == "cuda":
        x = x.contiguous(memory_format=torch.channels_last)
    sync = torch.cuda.synchronize if device.type == "cuda" else (lambda: None)
    was_training = model.training
    model.eval()
    with torch.no_grad():
        for _ in range(warmup):
            model(x)
        sync()
        n, start = 0, time.perf_counter()
        while True:
            model(x)
            n += 1
            sync()
            elapsed = time.perf_counter() - start
            if n >= min_iters and elapsed >= seconds:
                break
    model.train(was_training)
    return n * batch_size / elapsed


def environment_info(device: torch.device, seed: int) -> dict[str, Any]:
    """Versions, hardware and seed behind a leaderboard, for its reports."""
    from handzoo.environment import machine_info

    return {"seed": seed, **machine_info(device)}


# ----------------------------------------------------------------------------- the board
def run_leaderboard(
    candidates: Sequence[Candidate],
    data: str,
    split: str,
    *,
    data_root: str | None = None,
    image_size: int | None = None,
    device: str = "auto",
    batch_size: int = 32,
    workers: int = 0,
    limit: int | None = None,
    seed: int = 0,
    bench_seconds: float = 1.0,
    progress: Callable[[str, int, int], None] | None = None,
) -> Leaderboard:
    """Evaluate ``candidates`` on ``data``/``split`` and rank them by PA-MPJPE (lowest first).

    Args:
        image_size: pixels of the (S,S) input every model gets; default the
            first candidate's input size.
        limit: evaluate only the first ``limit`` samples of the split.
        progress: ``progress(label, done, total)`` after each batch.

    Raises:
        UsageError: no candidates, or a split without ground truth.
    """
    import handzoo
    from handzoo.cost import count_params, measure_gflops
    from handzoo.device import resolve_device
    from handzoo.evaluation import detection_report, predict, report, score
    from handzoo.metrics import pa_mpjpe
    from handzoo.runner.datasets import scoring_dataset

    if not candidates:
        raise UsageError("nothing to rank: give --models PATTERN and/or --runs DIR")
    dev = resolve_device(device)
    torch.manual_seed(seed)
    rows: list[Row] = []
    size = image_size
    num_samples = 0
    gt_first = None
    for cand in candidates:
        net = handzoo.create_model(cand.model, weights=cand.path)
        size = size or int(net.preprocessing["input_size"][-1])
        dataset = scoring_dataset(data, split, net, data_root, size)  # a run is ranked on its own split
        if limit is not None and limit < len(dataset):
            dataset = torch.utils.data.Subset(dataset, range(limit))
        params, gflops = count_params(net), measure_gflops(net, size)
        net = net.to(dev).eval()
        label, total, done = f"{cand.model} ({cand.weights})", len(dataset), 0

        def advance(n: int, label: str = label, total: int = total) -> None:
            nonlocal done
            done += n
            if progress is not None:
                progress(label, done, total)

        found = predict(net, dataset, dev, batch_size=batch_size, workers=workers, progress=advance)
        assert found is not None  # single process: rank 0
        if "gt" not in found:
            raise UsageError(
                f"{data}/{split} has no ground truth here; the leaderboard needs a labelled split"
            )
        per_sample = score(found, dev)
        metrics = {**report(per_sample), **detection_report(found)}
        num_samples = int(found["gt"].shape[0])
        gt_first = found["gt"] if gt_first is None else gt_first
        speed = measure_throughput(net, size, batch_size, dev, seconds=bench_seconds, seed=seed)
        rows.append(
            Row(
                rank=0,
                model=cand.model,
                weights=cand.weights,
                pa_mpjpe_mm=metrics["pa_mpjpe_mm"],
                mpjpe_mm=metrics["mpjpe_mm"],
                auc=metrics["auc_pa_0_50mm"],
                params_m=params / 1e6,
                gflops=gflops,
                img_per_s=speed,
                device=str(dev),
                num_samples=num_samples,
                metrics=metrics,
                pa_ci95_mm=ci95_mm(pa_mpjpe(found["pred"].double(), found["gt"].double())),
            )
        )
        del net
    rows.sort(key=lambda r: r.pa_mpjpe_mm)
    for i, row in enumerate(rows, 1):
        row.rank = i
    board = Leaderboard(
        dataset=data,
        split=split,
        image_size=int(size or 0),
        num_samples=num_samples,
        batch_size=batch_size,
        seed=seed,
        environment=environment_info(dev, seed),
        rows=rows,
        references=reported_references(data, split),
    )
    _add_baseline(board, gt_first, data, data_root, int(size or 0), dataset)
    return board


def ci95_mm(errors_m: torch.Tensor) -> float | None:
    """Half-width (mm) of the normal 95 % confidence interval of the mean of per-sample errors (m)."""
    n = errors_m.numel()
    if n < 2:
        return None
    return float(1.96 * errors_m.std(unbiased=True) / n**0.5) * 1000.0


def _add_baseline(
    board: Leaderboard, gt: torch.Tensor | None, data: str, root: str | None, size: int, dataset: Any = None
) -> None:
    """The constant pose's PA-MPJPE on the board's samples, and each row's ratio to it.

    The constant is the Procrustes mean of the dataset's *training* labels
    (:mod:`handzoo.scoring.baseline`), as in every run's ``baseline_pa_mpjpe_mm``;
    a set without training labels (``dataset.baseline_data``, e.g. ge-realworld)
    uses the synthetic set's training labels, never its own.
    """
    from handzoo.errors import HandzooError
    from handzoo.scoring.baseline import baseline_source, constant_baseline, constant_pose_errors

    if gt is None:
        return
    try:
        shape, source = constant_baseline(data, dataset, root, size)
    except (HandzooError, OSError, ValueError, TypeError) as exc:
        name = baseline_source(data, dataset)[0]
        board.baseline_note = f"no constant baseline: cannot read the training labels of {name!r} ({exc})"
        return
    if source:
        board.baseline_from = source
        board.baseline_note = (
            f"constant pose: the Procrustes mean of the {source} set's training labels ({data} has no "
            "training split; its own labels only score the models)"
        )
    errors = constant_pose_errors(shape, gt)
    board.baseline_pa_mpjpe_mm = float(errors.mean()) * 1000.0
    board.baseline_ci95_mm = ci95_mm(errors)
    for row in board.rows:
        row.vs_baseline = row.pa_mpjpe_mm / board.baseline_pa_mpjpe_mm


def reported_references(data: str, split: str) -> list[Reference]:
    """PA-MPJPE numbers that zoo.yaml lists as reported for ``data``/``split`` (papers, the seed report)."""
    from handzoo.zoo import load_zoo

    found = []
    for name, arch in load_zoo().architectures.items():
        for ref in arch.references:
            if ref.dataset == data and ref.split == split and ref.metric == "pa_mpjpe_mm":
                found.append(Reference(model=name, pa_mpjpe_mm=ref.value, source=ref.source, note=ref.note))
    return sorted(found, key=lambda r: r.pa_mpjpe_mm)
