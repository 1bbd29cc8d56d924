"""Predict a split and score it with :mod:`handzoo.metrics`, on the model's device.

Shared by ``handzoo run`` (validation), ``handzoo eval`` and the leaderboard.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import nullcontext

import torch
from torch.utils.data import DataLoader, Dataset, Sampler

from handzoo.distributed import DistInfo, gather_rows


class ShardSampler(Sampler[int]):
    """Indices ``rank::world_size`` in order: every sample on exactly one rank, no padding."""

    def __init__(self, length: int, rank: int = 0, world_size: int = 1) -> None:
        self.length, self.rank, self.world_size = length, rank, world_size

    def __iter__(self) -> Iterator[int]:
        return iter(range(self.rank, self.length, self.world_size))

    def __len__(self) -> int:
        return len(range(self.rank, self.length, self.world_size))


def autocast(device: torch.device, dtype: torch.dtype | None):
    """Autocast to ``dtype`` on ``device`` (see ``amp_dtype_for``); a no-op when None."""
    if dtype is None:
        return nullcontext()
    return torch.autocast(device_type=device.type, dtype=dtype)


@torch.no_grad()
def predict(
    model: torch.nn.Module,
    dataset: Dataset,
    device: torch.device,
    batch_size: int = 64,
    workers: int = 0,
    amp_dtype: torch.dtype | None = None,
    dist: DistInfo | None = None,
    progress=None,
) -> dict[str, torch.Tensor] | None:
    """Run ``model`` over ``dataset``; on rank 0 return rows sorted by sample index.

    Returns:
        ``index`` (N,), ``pred`` (N,21,3) metres root-relative, ``gt`` (N,21,3)
        metres root-relative (when the split has labels), ``pred_verts`` /
        ``gt_verts`` (N,778,3) when both exist, and ``detected`` (N,) bool when
        the model reports where it found no hand (``extras["detected"]``; those
        samples keep the model's prediction and are scored). Other ranks get None.
    """
    dist = dist or DistInfo()
    loader = DataLoader(
        dataset,
        batch_size=batch_size,
        sampler=ShardSampler(len(dataset), dist.rank, dist.world_size),
        num_workers=workers,
        pin_memory=device.type == "cuda",
    )
    from handzoo.model import takes_camera

    camera = takes_camera(model)
    was_training = model.training
    model.eval()
    rows: dict[str, list[torch.Tensor]] = {}
    for batch in loader:
        images = batch["image"].to(device, non_blocking=True).contiguous(memory_format=torch.channels_last)
        with autocast(device, amp_dtype):
            if camera and "K" in batch:
                out = model(images, K=batch["K"].to(device).float())
            else:
                out = model(images)
        found = {"index": torch.as_tensor(batch["index"]), "pred": out.joints3d.float()}
        if "joints3d" in batch:
            gt = batch["joints3d"].to(device).float()
            found["gt"] = gt - gt[:, :1]
        if (out.extras or {}).get("detected") is not None:  # a detector-based model says where it found none
            found["detected"] = out.extras["detected"].bool()
        if out.vertices is not None and "verts" in batch:
            gt_joints = batch["joints3d"].to(device).float()
            found["pred_verts"] = out.vertices.float()
            found["gt_verts"] = batch["verts"].to(device).float() - gt_joints[:, :1]
        for k, v in found.items():
            rows.setdefault(k, []).append(v.detach().cpu())
        if progress is not None:
            progress(len(images))
    model.train(was_training)
    local = {k: torch.cat(v) for k, v in rows.items()} if rows else {}
    gathered = gather_rows(dist, local) if local else local
    if gathered is None:
        return None
    order = torch.argsort(gathered["index"])
    return {k: v[order] for k, v in gathered.items()}


def detection_report(rows: dict[str, torch.Tensor]) -> dict[str, float]:
    """``{"detected_fraction": share of samples where the model found a hand}``, or {} if it does not say."""
    if "detected" not in rows:
        return {}
    return {"detected_fraction": float(rows["detected"].float().mean())}


def score(rows: dict[str, torch.Tensor], device: torch.device | None = None) -> dict[str, torch.Tensor]:
    """Per-sample values (N,) of every registered metric that applies to ``rows``, by metric name.

    A metric's ``inputs`` metadata says what it compares: ``joints`` (the
    default; ``pred``/``gt`` (N,21,3) root-relative metres) or ``vertices``
    (``pred_verts``/``gt_verts`` (N,778,3), only when the model gives a mesh
    and the split has one). First- and third-party metrics are computed alike,
    so a registered metric appears in metrics.json, the leaderboard and the
    model card.
    """
    from handzoo.plugins import get_registry

    if "gt" not in rows:
        raise ValueError("this split has no ground truth; write a submission instead of scoring it")
    dev = device or torch.device("cpu")
    inputs = {"joints": (rows["pred"], rows["gt"])}
    if rows.get("pred_verts") is not None and rows.get("gt_verts") is not None:
        inputs["vertices"] = (rows["pred_verts"], rows["gt_verts"])
    out: dict[str, torch.Tensor] = {}
    for entry in get_registry().entries("metric"):
        pair = inputs.get(metric_inputs(entry))
        if pair is None:
            continue
        values = entry.build(entry.name)(pair[0].to(dev, torch.float64), pair[1].to(dev, torch.float64))
        values = torch.as_tensor(values, dtype=torch.float64, device=dev)
        if values.shape != (len(pair[0]),):
            raise ValueError(
                f"metric {entry.name!r} (plugin {entry.plugin!r}) returned shape {tuple(values.shape)}; "
                f"a metric gives one value per sample, ({len(pair[0])},)"
            )
        out[entry.name] = values
    return out


def metric_inputs(entry) -> str:
    """'joints' or 'vertices': what a registered metric compares (its ``inputs`` metadata)."""
    return "vertices" if str(entry.metadata.get("inputs", "joints")).startswith("vert") else "joints"


def report(per_sample: dict[str, torch.Tensor]) -> dict[str, float]:
    """Means in report units under each metric's ``report_key`` (metres become mm: ``*_mm`` keys).

    A metric with ``units="m"`` is reported in millimetres; its key is its
    ``report_key`` metadata, or ``<name>_mm`` (metres) / ``<name>`` (other units).
    """
    from handzoo.plugins import get_registry

    registry = get_registry()
    out: dict[str, float] = {}
    for name, values in per_sample.items():
        meta = registry.get("metric", name).metadata if ("metric", name) in registry else {}
        metres = meta.get("units") == "m"
        key = meta.get("report_key") or (f"{name}_mm" if metres else name)
        if values.numel() == 0:
            raise ValueError(f"{name}: no samples to summarise")
        out[key] = float(values.to(torch.float64).mean()) * (1000.0 if metres else 1.0)
    return out


def per_joint_table(rows: dict[str, torch.Tensor]) -> list[tuple[str, float]]:
    """Mean PA error per canonical joint in mm: [(joint name, mm), ...]."""
    from handzoo.joints import CANONICAL
    from handzoo.metrics import per_joint_pa_error

    err = per_joint_pa_error(rows["pred"].double(), rows["gt"].double()).mean(0) * 1000.0
    return list(zip(CANONICAL, err.tolist(), strict=True))
