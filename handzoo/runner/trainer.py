"""The training loop behind ``handzoo run``: train -> evaluate -> export.

Outputs in the run folder (rank 0 only): ``config.yaml`` (fully resolved),
``history.jsonl`` (one row per logged step, each with ``step``),
``checkpoint.pt`` (resumable), ``metrics.json``, ``model.safetensors``
(weights + metadata), ``curves.png`` and ``MODEL_CARD.md``.
"""

from __future__ import annotations

import copy
import itertools
import json
import logging
import os
import random
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.utils.data import DataLoader, DistributedSampler, Sampler

from handzoo.builder import create_model_at_size
from handzoo.config import RunConfig
from handzoo.data.device_augment import DevicePipeline
from handzoo.device import amp_dtype_for, resolve_device, wants_cuda
from handzoo.distributed import barrier, init_from_env, shutdown
from handzoo.errors import ConfigError, HandzooError, UsageError
from handzoo.evaluation import autocast, predict, score
from handzoo.files import append_line, json_text, remove_temporaries, write_text_atomic
from handzoo.interfaces import part_metadata
from handzoo.losses import build_training_loss
from handzoo.model import takes_camera
from handzoo.runner import checkpoint as ckpt
from handzoo.runner.blend import blend_toward, state_digest
from handzoo.runner.budget import UNFITTED, TimeBudget
from handzoo.runner.datasets import build_dataset, choose_pipeline
from handzoo.runner.model_card import write_model_card
from handzoo.runner.plan import check_start
from handzoo.runner.plots import plot_curves
from handzoo.runner.progress import TrainingProgress
from handzoo.runner.schedule import lr_factor
from handzoo.scoring.baseline import constant_pose_errors, procrustes_mean, training_labels
from handzoo.seeding import torch_seed
from handzoo.weights import export_weights, weights_metadata

log = logging.getLogger("handzoo")

OUTPUT_FILES = (
    "config.yaml",
    "history.jsonl",
    "metrics.json",
    "model.safetensors",
    ckpt.CHECKPOINT_NAME,
    "curves.png",
    "MODEL_CARD.md",
)
"""Every file a run writes: the overwrite guard (``--force``) and the clean-up cover them all."""


class LossWindow:
    """The training losses between two log rows, kept on the device until they are read.

    ``pending`` holds each step's ``[loss, *extra terms]`` tensor; :meth:`step`
    reads them at log, checkpoint and epoch steps (through ``check``, which stops
    the run at a non-finite loss) and, until the first log row, at every step,
    so the progress line shows a loss from the first step on.
    """

    def __init__(self, check: Callable[[list[torch.Tensor], int], list[list[float]]]) -> None:
        self.check = check
        self.pending: list[torch.Tensor] = []
        self.rows: list[list[float]] = []  # read steps since the last log row: [loss, *terms]
        self.logged: float | None = None  # the last loss written to history.jsonl

    def step(self, step: int, read: bool, log: bool, terms: list[str] | None) -> dict[str, float] | None:
        """After an optimiser step: read what is due; at a log step, the extra terms' means to log."""
        if read or log or self.logged is None:
            self.rows.extend(self.check(self.pending, step))
            self.pending.clear()
        if not log:
            return None
        window = np.asarray(self.rows, dtype=np.float64)
        self.logged = float(window[:, 0].mean())
        self.rows.clear()
        return {f"loss_{name}": float(window[:, 1 + k].mean()) for k, name in enumerate(terms or [])}

    @property
    def shown(self) -> float | None:
        """The loss for the progress line: the last logged one, or the mean of the steps read so far."""
        if self.logged is not None or not self.rows:
            return self.logged
        return float(np.mean([r[0] for r in self.rows]))


class NonFiniteLossError(HandzooError):
    """The loss became NaN or Inf; the last good checkpoint is kept."""


@dataclass
class RunResult:
    out: Path
    metrics: dict[str, float]
    steps: int
    seconds: float
    history: list[dict[str, Any]] = field(default_factory=list)


# ----------------------------------------------------------------------------- set-up
def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


class ResumableSampler(Sampler[int]):
    """A DistributedSampler (shuffled per epoch from the run seed) that can start mid-epoch."""

    def __init__(self, base: DistributedSampler) -> None:
        self.base = base
        self.skip = 0

    def set_position(self, epoch: int, skip_samples: int) -> None:
        self.base.set_epoch(epoch)
        self.skip = skip_samples

    def __iter__(self) -> Iterator[int]:
        return itertools.islice(iter(self.base), self.skip, None)

    def __len__(self) -> int:
        return len(self.base) - self.skip


def _is_oom(exc: BaseException) -> bool:
    return (
        isinstance(exc, torch.cuda.OutOfMemoryError)
        or "out of memory" in str(exc).lower()
        or ("can't allocate memory" in str(exc))
    )


def freeze_parameters(model: torch.nn.Module, prefixes: list[str]) -> None:
    """``optim.freeze``: the parameters named by each prefix (or under it, ``prefix.``) stop training.

    Raises:
        ConfigError: a prefix names no parameter (listing the model's top-level names).
    """
    from handzoo.interfaces import unwrap_model

    named = dict(unwrap_model(model).named_parameters())
    for prefix in prefixes:
        hits = [n for n in named if n == prefix or n.startswith(prefix + ".")]
        if not hits:
            raise ConfigError(
                f"optim.freeze: no parameter of the model is named {prefix!r} or under it "
                f"(parameters start with: {', '.join(sorted({n.split('.')[0] for n in named}))})"
            )
        for name in hits:
            named[name].requires_grad_(False)


# ----------------------------------------------------------------------------- the run
class Trainer:
    """One run. Construct with a resolved :class:`RunConfig`, then call :meth:`run`."""

    def __init__(
        self,
        cfg: RunConfig,
        out: str | Path,
        resume: bool = False,
        console: Any = None,
    ) -> None:
        check_start(cfg)  # the CLI checked already (before any clean-up); the Python API had not
        self.cfg = cfg
        self.out = Path(out)
        self.resume = resume
        self.dist = init_from_env("cuda" if wants_cuda(cfg.run.device) else "cpu")
        self.device = resolve_device(cfg.run.device, self.dist)
        self.amp_dtype = amp_dtype_for(self.device, cfg.run.amp)
        self.console = console
        self.history: list[dict[str, Any]] = []
        self.device_augment: DevicePipeline | None = None
        self._augment_generator = torch.Generator(device=self.device)
        self._term_names: list[str] | None = None
        # model.init_blend: (the state the run started from, less what init left fresh; its digest)
        self._blend_start: tuple[dict[str, torch.Tensor], str] | None = None

    # -- logging helpers -------------------------------------------------------
    def say(self, message: str) -> None:
        if not self.dist.is_main:
            return
        if self.console is not None:
            self.console.print(message)
        else:
            log.info(message)

    def _append_history(self, row: dict[str, Any]) -> None:
        self.history.append(row)
        if self.dist.is_main:
            append_line(self.out / "history.jsonl", json_text(row))

    # -- main entry ----------------------------------------------------------------
    def run(self) -> RunResult:
        try:
            return self._run()
        except RuntimeError as exc:
            if _is_oom(exc):
                bs = self.cfg.data.batch_size
                raise HandzooError(
                    f"out of memory on {self.device} at batch size {bs}, {self.cfg.data.image_size} px; "
                    f"lower --batch-size (e.g. {max(1, bs // 2)}) or --image-size"
                ) from exc
            raise
        finally:
            shutdown(self.dist)

    def _run(self) -> RunResult:
        cfg, dist = self.cfg, self.dist
        started = time.perf_counter()
        if dist.is_main:
            self.out.mkdir(parents=True, exist_ok=True)
        seed_everything(cfg.run.seed + dist.rank)
        if self.device.type == "cuda":
            torch.backends.cudnn.benchmark = True
            torch.backends.cuda.matmul.allow_tf32 = True
            torch.backends.cudnn.allow_tf32 = True

        model = raw_model = self._build_model()
        preprocessing = dict(model.preprocessing)
        self.device_augment, pipeline_note = choose_pipeline(cfg, self.device, preprocessing)
        cfg.data.pipeline = "device" if self.device_augment is not None else "cpu"  # config.yaml says which
        on_device = self.device_augment is not None
        train_ds = build_dataset(cfg, "train", preprocessing, augment=not on_device, uint8_images=on_device)
        val_ds = build_dataset(cfg, "val", preprocessing, augment=False)
        bs = cfg.data.batch_size
        sampler, loader, steps_per_epoch = self._loader(train_ds)
        total_steps = self._total_steps(steps_per_epoch)

        if dist.enabled:
            model = torch.nn.parallel.DistributedDataParallel(
                model, device_ids=[self.device.index] if self.device.type == "cuda" else None
            )
        if cfg.run.compile:
            model = torch.compile(model)
        optimizer = self._optimizer(raw_model)
        scaler = torch.amp.GradScaler("cuda", enabled=self.amp_dtype == torch.float16)
        budget = {"total": total_steps}
        o = cfg.optim

        def factor(step: int) -> float:
            return lr_factor(step, budget["total"], o.schedule, o.warmup_steps, o.constant_fraction)

        scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, factor)
        loss_fn = build_training_loss(raw_model, cfg.optim.loss, cfg.optim.loss_cfg)
        self._camera = takes_camera(raw_model)  # image-space heads lift to 3D with each crop's K
        self.cfg.optim.loss_terms = loss_fn.describe()

        step = self._start(raw_model, optimizer, scheduler, scaler, budget)

        self._save_config(budget["total"])
        self.say(
            self._plan_line(len(train_ds), len(val_ds), steps_per_epoch, budget["total"])
            + f"; {pipeline_note}"
        )

        # The constant baseline needs only the training labels.
        baseline_shape = procrustes_mean(torch.as_tensor(training_labels(train_ds), dtype=torch.float64))

        last_val_step = -1
        # In time-budget mode the schedule's length is measured while training.
        timer = None
        if budget["total"] == UNFITTED and step == 0:
            timer = TimeBudget(cfg.run.time_budget_min, started, cfg.optim.warmup_steps, dist)
        val_metrics: dict[str, float] = {}
        progress = TrainingProgress(
            self.console, budget["total"], step, bs * dist.world_size, self.say, enabled=dist.is_main
        )
        losses = LossWindow(self._check_losses)
        data_wait = 0.0
        epoch_started = time.perf_counter()
        model.train()
        with progress:
            while step < budget["total"]:
                epoch, in_epoch = divmod(step, steps_per_epoch)
                sampler.set_position(epoch, in_epoch * bs)
                if hasattr(train_ds, "set_epoch"):
                    train_ds.set_epoch(epoch)
                tick = time.perf_counter()
                for batch in loader:
                    data_wait += time.perf_counter() - tick
                    lr_used = optimizer.param_groups[0]["lr"]
                    # The loss stays on the device: reading it every step would
                    # stall the GPU. It is checked at each log and checkpoint.
                    losses.pending.append(
                        self._train_step(model, raw_model, batch, optimizer, scaler, loss_fn, step)
                    )
                    scheduler.step()
                    step += 1
                    ckpt_now = step % cfg.run.checkpoint_every == 0
                    epoch_now = step % steps_per_epoch == 0
                    if timer is not None:
                        timer.step_done(step)
                    if timer is not None and timer.due(step, ckpt_now, epoch_now):
                        first = budget["total"] == UNFITTED
                        refit = timer.refit(step, budget["total"])
                        if refit is not None:
                            budget["total"] = progress.total = refit
                            self._save_config(refit)
                            if first:
                                self.say(f"time budget: {refit} steps fit in {cfg.run.time_budget_min:g} min")
                    last = step >= budget["total"]
                    log_now = step % cfg.run.log_every == 0 or last
                    logged = losses.step(step, log_now or ckpt_now or epoch_now, log_now, self._term_names)
                    progress.advance(step, losses.shown)
                    if logged is not None:
                        row = {"step": step, "epoch": epoch, "loss": losses.logged, "lr": lr_used}
                        self._append_history({**row, "img_per_s": progress.rate(), **logged})
                    if ckpt_now:
                        self._checkpoint(raw_model, optimizer, scheduler, scaler, step, budget["total"])
                    if last:
                        break
                    tick = time.perf_counter()
                epoch_end = step % steps_per_epoch == 0 or step >= budget["total"]
                if epoch_end:
                    paused = time.perf_counter()
                    elapsed = time.perf_counter() - epoch_started
                    wait_fraction = data_wait / max(elapsed, 1e-9)
                    val_metrics = self._validate(model, val_ds, baseline_shape)
                    last_val_step = step
                    self._append_history(
                        {
                            "step": step,
                            "epoch": epoch,
                            "data_wait_fraction": round(wait_fraction, 4),
                            **{f"val_{k}": v for k, v in val_metrics.items()},
                        }
                    )
                    self._checkpoint(raw_model, optimizer, scheduler, scaler, step, budget["total"])
                    if val_metrics:
                        self.say(
                            f"epoch {epoch + 1}: step {step}, "
                            f"val PA-MPJPE {val_metrics['pa_mpjpe_mm']:.2f} mm "
                            f"(baseline {val_metrics['baseline_pa_mpjpe_mm']:.2f}), data wait "
                            f"{100 * wait_fraction:.0f}%"
                        )
                    data_wait, epoch_started = 0.0, time.perf_counter()
                    progress.exclude(time.perf_counter() - paused)

        if last_val_step != step:
            val_metrics = self._validate(model, val_ds, baseline_shape)
        if cfg.model.blends:
            val_metrics = self._blend_with_start(raw_model, val_ds, baseline_shape, step, val_metrics)
        seconds = time.perf_counter() - started
        result = RunResult(self.out, val_metrics, step, seconds, self.history)
        if dist.is_main:
            self._export(raw_model, preprocessing, val_metrics, seconds, step)
        barrier(dist)
        return result

    # -- set-up ------------------------------------------------------------------
    def _build_model(self) -> torch.nn.Module:
        """The configured model on the run's device (channels-last), initialised from ``model.init``.

        With ``model.init_blend`` the starting state is kept (a copy on the CPU) for the blend after the
        last step. A resumed run, whose weights come from the checkpoint, still applies ``model.init``
        then, so a missing or changed start stops it before it trains (:meth:`_start` compares the
        digests), not after.
        """
        cfg = self.cfg
        model = create_model_at_size(
            cfg.model.name, cfg.data.image_size, pretrained=cfg.model.pretrained, **cfg.model.options
        ).to(self.device)
        built = part_metadata(model)
        if built:
            self.say("model built with " + ", ".join(f"{k}={v}" for k, v in built.items()))
        fresh: list[str] = []
        if cfg.model.init and (not self.resume or cfg.model.blends):
            from handzoo.builder import init_from

            label, fresh = init_from(model, cfg.model.init, head_swap=cfg.model.init_head_swap)
            kept = f"; left at their fresh values: {len(fresh)} ({', '.join(fresh[:4])})" if fresh else ""
            self.say(f"initialised from {label}{kept}")
        if cfg.model.blends:
            # Tensors init left fresh are not part of the start: never blended, nor digested.
            skip = set(fresh)
            own = model.state_dict()
            state = {k: v.detach().to("cpu", copy=True) for k, v in own.items() if k not in skip}
            self._blend_start = (state, state_digest(state))
        # channels_last: cuDNN's and oneDNN's fast convolution layout (CPU float32 ~1.15x too).
        return model.to(memory_format=torch.channels_last)

    def _blend_with_start(self, raw_model, val_ds, baseline_shape, step: int, fine_tuned: dict) -> dict:
        """``model.init_blend``: the weights moved back toward the start (:mod:`handzoo.runner.blend`).

        Returns the blend's validation metrics; the fine-tuned weights' (``fine_tuned``) stay in history."""
        assert self._blend_start is not None
        share = self.cfg.model.init_blend
        start, _ = self._blend_start
        blended = blend_toward(raw_model, start, share)
        kept = sum(1 for k, v in raw_model.state_dict().items() if v.is_floating_point()) - len(blended)
        metrics = self._validate(raw_model, val_ds, baseline_shape)
        self._append_history(
            {
                "step": step,
                "init_blend": share,
                **{f"val_fine_tuned_{k}": v for k, v in fine_tuned.items() if k == "pa_mpjpe_mm"},
                **{f"val_{k}": v for k, v in metrics.items()},
            }
        )
        if metrics and fine_tuned:
            unblended = f"; {kept} tensors the start did not give kept fine-tuned" if kept else ""
            self.say(
                f"blended with the starting weights ({100 * share:g}% fine-tuned, "
                f"model.init_blend{unblended}): "
                f"val PA-MPJPE {metrics['pa_mpjpe_mm']:.2f} mm (fine-tuned alone "
                f"{fine_tuned['pa_mpjpe_mm']:.2f} mm, baseline {metrics['baseline_pa_mpjpe_mm']:.2f})"
            )
        return metrics

    def _loader(self, train_ds) -> tuple[ResumableSampler, DataLoader, int]:
        """(the resumable sampler, the training DataLoader, steps per epoch) of this process."""
        cfg, dist = self.cfg, self.dist
        bs = cfg.data.batch_size
        if len(train_ds) < bs * dist.world_size:
            raise UsageError(
                f"the training split has {len(train_ds)} samples, fewer than one batch "
                f"({bs} x {dist.world_size} processes); lower --batch-size"
            )
        base_sampler = DistributedSampler(
            train_ds,
            num_replicas=dist.world_size,
            rank=dist.rank,
            shuffle=True,
            seed=cfg.run.seed,
            drop_last=True,
        )
        sampler = ResumableSampler(base_sampler)
        loader = DataLoader(
            train_ds,
            batch_size=bs,
            sampler=sampler,
            num_workers=cfg.data.workers,
            # Pinning pays off when a worker pins in the background, not in the main thread.
            pin_memory=self.device.type == "cuda" and cfg.data.workers > 0,
            drop_last=True,
            persistent_workers=False,
        )
        return sampler, loader, len(base_sampler) // bs

    def _start(self, raw_model, optimizer, scheduler, scaler, budget: dict[str, int]) -> int:
        """The step to start from: 0 with an empty history, or the checkpoint's (``--resume``),
        every state restored and ``budget["total"]`` set to the checkpoint's schedule length."""
        dist = self.dist
        if self.resume and dist.is_main:
            stale = remove_temporaries(self.out, OUTPUT_FILES)  # left by a write the kill interrupted
            if stale:
                self.say(f"removed {len(stale)} unfinished temporary file(s) of the interrupted run")
        if not (self.resume and (self.out / ckpt.CHECKPOINT_NAME).exists()):
            if dist.is_main:
                write_text_atomic(self.out / "history.jsonl", "", "history")
            return 0
        state = ckpt.load(self.out / ckpt.CHECKPOINT_NAME, map_location=self.device)
        raw_model.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        scheduler.load_state_dict(state["scheduler"])
        scaler.load_state_dict(state["scaler"])
        rng = state["rng"]
        ckpt.set_rng_state(rng[min(dist.rank, len(rng) - 1)] if isinstance(rng, list) else rng)
        expected = state.get("blend_start_sha256")
        if self._blend_start is not None and not expected:
            self.say("the checkpoint records no digest of the start: blending toward the start as built now")
        if expected and self._blend_start is not None and self._blend_start[1] != expected:
            raise UsageError(
                f"{self.out / ckpt.CHECKPOINT_NAME}: the weights this run started from "
                f"({self.cfg.model.init or 'the pretrained ones'}) are not the ones it was started with, so "
                "the blend after the last step would differ; put the original weights back or start over "
                "with --force"
            )
        step = int(state["step"])
        budget["total"] = int(state["total_steps"])
        self._truncate_history(step)
        self.say(f"resuming from step {step} of {budget['total']}")
        return step

    # -- pieces ------------------------------------------------------------------
    def _total_steps(self, steps_per_epoch: int) -> int:
        run = self.cfg.run
        if run.time_budget_min is not None and run.max_steps is None and run.epochs is None:
            return UNFITTED  # provisional: fitted while training (handzoo.runner.budget)
        if run.max_steps is not None and run.epochs is not None:
            return min(run.max_steps, run.epochs * steps_per_epoch)
        if run.max_steps is not None:
            return run.max_steps
        if run.epochs is not None:
            return run.epochs * steps_per_epoch
        raise UsageError("the run length is not set: pass --epochs or --max-steps")

    def _optimizer(self, model: torch.nn.Module) -> torch.optim.Optimizer:
        o = self.cfg.optim
        freeze_parameters(model, o.freeze)
        params = [p for p in model.parameters() if p.requires_grad]
        lr = o.scaled_lr(self.cfg.data.batch_size * self.dist.world_size)
        # One fused kernel per step for all parameters on CUDA, in place of a launch per tensor.
        fused = {"fused": True} if self.device.type == "cuda" else {}
        if o.name == "adam":
            return torch.optim.Adam(params, lr=lr, weight_decay=o.weight_decay, **fused)
        if o.name == "adamw":
            return torch.optim.AdamW(params, lr=lr, weight_decay=o.weight_decay, **fused)
        return torch.optim.SGD(params, lr=lr, momentum=0.9, weight_decay=o.weight_decay, **fused)

    def _train_step(self, model, raw_model, batch, optimizer, scaler, loss_fn, step: int) -> torch.Tensor:
        """One optimiser step; returns the loss as a device tensor (no host sync)."""
        dev = self.device
        batch = {k: (v.to(dev, non_blocking=True) if torch.is_tensor(v) else v) for k, v in batch.items()}
        if self.device_augment is not None:
            # A stream per (seed, rank, step): a resumed run draws what the uninterrupted one did.
            self._augment_generator.manual_seed(torch_seed((self.cfg.run.seed, self.dist.rank, step)))
            batch = self.device_augment(batch, self._augment_generator)
        images = batch["image"].contiguous(memory_format=torch.channels_last)
        with autocast(dev, self.amp_dtype):
            out = model(images, K=batch["K"].float()) if self._camera and "K" in batch else model(images)
        terms = loss_fn(out, batch)
        loss = terms["loss"].float()
        if self._term_names is None:  # the loss's own extra terms, logged beside it in history.jsonl
            self._term_names = sorted(
                k for k, v in terms.items() if k != "loss" and torch.is_tensor(v) and v.numel() == 1
            )
        optimizer.zero_grad(set_to_none=True)
        scaler.scale(loss).backward()
        if self.cfg.optim.grad_clip is not None:
            scaler.unscale_(optimizer)
            torch.nn.utils.clip_grad_norm_(raw_model.parameters(), self.cfg.optim.grad_clip)
        scaler.step(optimizer)
        scaler.update()
        nan = loss.new_tensor(float("nan"))
        extra = [terms[k].detach().float().reshape(()) if k in terms else nan for k in self._term_names]
        return torch.stack([loss.detach(), *extra])

    def _check_losses(self, pending: list[torch.Tensor], step: int) -> list[list[float]]:
        """The pending steps' [loss, *extra terms] as floats; stops the run at the first non-finite loss.

        Called before every log row and checkpoint, so a checkpoint is only
        ever written after every loss since the previous one was finite.
        Under DDP every rank checks at the same steps and stops together.
        """
        rows = torch.stack(pending).float()
        values = rows[:, 0]
        finite = torch.isfinite(values)
        if self.dist.enabled:
            flags = finite.to(torch.int32)
            torch.distributed.all_reduce(flags, op=torch.distributed.ReduceOp.MIN)
            finite = flags.bool()
        host = values.tolist()
        ok = finite.tolist()
        if not all(ok):
            first = ok.index(False)
            bad_step = step - len(host) + first + 1
            saved = self.out / ckpt.CHECKPOINT_NAME
            then = (
                f"The last good checkpoint is kept in {saved}; lower --lr or set --set optim.grad_clip=1.0, "
                "then --resume"
                if saved.exists()
                else "No checkpoint was written before it; lower --lr or set --set optim.grad_clip=1.0 "
                "and start again with --force"
            )
            raise NonFiniteLossError(f"non-finite loss ({host[first]}) at step {bad_step}; stopped. {then}")
        return rows.tolist()

    def _validate(self, model, val_ds, baseline_shape: torch.Tensor) -> dict[str, float]:
        from handzoo.evaluation import report

        rows = predict(
            model,
            val_ds,
            self.device,
            batch_size=max(64, self.cfg.data.batch_size),
            workers=self.cfg.data.workers,
            amp_dtype=self.amp_dtype,
            dist=self.dist,
        )
        if rows is None:  # not rank 0
            return {}
        per_sample = score(rows, self.device)
        metrics = report(per_sample)
        gt = rows["gt"].to(self.device, torch.float64)
        metrics["baseline_pa_mpjpe_mm"] = float(constant_pose_errors(baseline_shape, gt).mean()) * 1000.0
        metrics["num_samples"] = int(gt.shape[0])
        return metrics

    def _checkpoint(self, model, optimizer, scheduler, scaler, step: int, total: int) -> None:
        rng = ckpt.rng_state()
        if self.dist.enabled:
            gathered: list[Any] = [None] * self.dist.world_size
            torch.distributed.all_gather_object(gathered, rng)
            rng = gathered
        if not self.dist.is_main:
            return
        ckpt.save_atomic(
            {
                "model": model.state_dict(),
                "optimizer": optimizer.state_dict(),
                "scheduler": scheduler.state_dict(),
                "scaler": scaler.state_dict(),
                "rng": rng,
                "step": step,
                "total_steps": total,
                "config": self.cfg.model_dump(mode="json"),
                # Which start the blend after the last step moves toward; a resumed run checks it.
                "blend_start_sha256": self._blend_start[1] if self._blend_start else None,
            },
            self.out / ckpt.CHECKPOINT_NAME,
        )

    def _save_config(self, total_steps: int) -> None:
        if not self.dist.is_main:
            return
        self.out.mkdir(parents=True, exist_ok=True)
        resolved = self.cfg.model_copy(deep=True)
        resolved.run.max_steps = total_steps
        resolved.run.out = str(self.out)
        resolved.to_yaml(self.out / "config.yaml")

    def _truncate_history(self, step: int) -> None:
        path = self.out / "history.jsonl"
        if not path.exists():
            return
        rows = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
        # A blend row is written after the last step: the resumed run blends (and writes it) again.
        self.history = [r for r in rows if r["step"] <= step and "init_blend" not in r]
        if self.dist.is_main:
            write_text_atomic(path, "".join(json_text(r) + "\n" for r in self.history), "history")

    def _plan_line(self, n_train: int, n_val: int, steps_per_epoch: int, total: int) -> str:
        d = self.cfg.data
        dev = str(self.device)
        notes = []
        if self.device.type == "cpu":
            notes.append(f"{torch.get_num_threads()} threads")
        elif self.device.type == "cuda":
            notes.append(torch.cuda.get_device_name(self.device))
        if self.amp_dtype is not None:
            notes.append(f"AMP {str(self.amp_dtype).removeprefix('torch.')}")
        if notes:
            dev += f" ({', '.join(notes)})"
        procs = f" x {self.dist.world_size} processes" if self.dist.enabled else ""
        o = self.cfg.optim
        if total == UNFITTED:  # time-budget mode: the length is fixed after warm-up
            length = f"steps that fit in {self.cfg.run.time_budget_min:g} min"
        else:
            length = f"{total} steps ({total / max(1, steps_per_epoch):.1f} epochs)"
        lr = f"lr {o.lr:g}"
        if o.lr_scaling != "none":
            used = o.scaled_lr(d.batch_size * self.dist.world_size)
            lr += f" x {o.lr_scaling} batch scaling (reference {o.lr_reference_batch}) = {used:g}"
        return (
            f"device {dev}{procs}; data {d.name}: {n_train} train / {n_val} val at {d.image_size} px; "
            f"schedule: {length} x batch {d.batch_size}, {o.name} {lr} {o.schedule}, "
            f"warm-up {o.warmup_steps}"
        )

    def _export(self, model, preprocessing, metrics, seconds: float, steps: int) -> None:
        config = self.cfg.model_dump(mode="json")
        write_text_atomic(self.out / "metrics.json", json_text(metrics, indent=2) + "\n", "metrics")
        meta = weights_metadata(self.cfg.model.name, config, preprocessing, metrics, part_metadata(model))
        export_weights(model, self.out / "model.safetensors", meta)
        if self.history:
            baseline = metrics.get("baseline_pa_mpjpe_mm")
            rows = self.history + ([{"step": steps, "baseline_pa_mpjpe_mm": baseline}] if baseline else [])
            plot_curves(
                rows,
                self.out / "curves.png",
                title=f"{self.cfg.model.name} on {self.cfg.data.name}",
                loss=self.cfg.optim.loss,
                extra_terms=len(self.cfg.optim.loss_terms) > 1,
            )
        write_model_card(
            self.out / "MODEL_CARD.md", self.cfg.model.name, config, metrics, str(self.device), seconds, steps
        )


def copy_config(cfg: RunConfig) -> RunConfig:
    return copy.deepcopy(cfg)


def clean_out_dir(out: Path) -> None:
    """Remove a previous run's outputs and their stale temporaries (``--force``), nothing else.

    A symlink among them is removed itself, never its target.
    """
    for name in OUTPUT_FILES:
        p = out / name
        if p.exists() or p.is_symlink():
            os.remove(p)
    remove_temporaries(out, OUTPUT_FILES)
