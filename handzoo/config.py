"""Typed run configuration (pydantic v2), YAML I/O and ``--set key=value`` overrides.

The configuration is flat and explicit: four sections, no inheritance::

    model: {name, pretrained, options, init, init_head_swap, init_blend}
    data:  {name, root, image_size, augment, augment_cfg, batch_size, workers, val_fraction,
            image_cache, pipeline, options}
    optim: {name, lr, lr_scaling, lr_reference_batch, weight_decay, loss, loss_cfg, loss_terms,
            schedule, warmup_steps, constant_fraction, grad_clip}
    run:   {epochs, max_steps, seed, device, out, checkpoint_every, amp, compile, log_every,
            time_budget_min}

Overrides use dotted keys (``optim.lr=3e-4``, ``data.augment=[rotate,flip]``,
``model.options.head=mano``); values are parsed as YAML and validated, and an
invalid key or value raises :class:`handzoo.errors.ConfigError` naming the key
and the allowed values.
"""

from __future__ import annotations

import contextlib
import difflib
import typing
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from handzoo.errors import ConfigError


class _Section(BaseModel):
    # allow_inf_nan=False: ``optim.lr=.inf`` or ``nan`` is a config error, not a run that diverges.
    model_config = ConfigDict(extra="forbid", validate_assignment=True, allow_inf_nan=False)


class ModelConfig(_Section):
    """Which registered model, and the options passed to its factory."""

    name: str = "resnet101"
    pretrained: bool = False
    options: dict[str, Any] = Field(default_factory=dict)
    # Fine-tune from published or local weights: NAME[:TAG], a URL or a .safetensors path.
    init: str | None = None
    # With init: the head's tensors may differ (a new head starts from scratch).
    init_head_swap: bool = False
    # The exported weights' fine-tuned share: θ = θ₀ + s·(θ_ft − θ₀), θ₀ the weights the run started
    # from (its pretrained weights, then init); keeps more of what they knew (handzoo.runner.blend).
    init_blend: float | None = Field(None, gt=0.0, le=1.0)

    @field_validator("init_blend", mode="before")
    @classmethod
    def _blend_is_a_number(cls, v: Any) -> Any:
        # YAML reads yes/true as a boolean, which pydantic would take as 1.0: no blend, silently.
        if isinstance(v, bool):
            raise ValueError("a number in (0, 1], the fine-tuned share (e.g. 0.75), not a yes/no")
        return v

    @property
    def blends(self) -> bool:
        """Whether the run exports a blend with its start (``init_blend`` below 1)."""
        return self.init_blend is not None and self.init_blend < 1.0


class DataConfig(_Section):
    """Dataset, input resolution, augmentation and loading."""

    name: str = "synthetic"
    root: str | None = None
    image_size: int = Field(128, ge=16, le=1024)
    augment: list[str] = Field(default_factory=lambda: ["background", "rotate", "flip", "occlude"])
    augment_cfg: dict[str, dict[str, Any]] = Field(default_factory=dict)
    batch_size: int = Field(32, ge=1)
    workers: int = Field(2, ge=0)
    val_fraction: float = Field(0.1, gt=0.0, lt=1.0)
    # Decode every image once into a memory-mapped uint8 cache at image_size
    # (datasets that support it), so epochs do not decode JPEGs again.
    image_cache: bool = False
    # Where the training augmentation runs: "cpu" (numpy/OpenCV in the DataLoader workers),
    # "device" (batched in torch on the training device; workers only decode and ship uint8)
    # or "auto" (device on CUDA, cpu elsewhere). config.yaml records the one a run used.
    pipeline: Literal["auto", "device", "cpu"] = "auto"
    # Options of the dataset's own factory (``handzoo list datasets --json``), e.g.
    # ``{generator_seed: 3, num: 2000}`` to choose another synthetic set.
    options: dict[str, Any] = Field(default_factory=dict)


class OptimConfig(_Section):
    """Optimiser, loss and learning-rate schedule (the seed: Adam, L1, lr 1e-4)."""

    name: Literal["adam", "adamw", "sgd"] = "adam"
    lr: float = Field(1e-4, gt=0.0)
    # Large batches: the lr actually used is lr·(B/lr_reference_batch) ("linear", Goyal et al. 2017)
    # or lr·sqrt(B/lr_reference_batch) ("sqrt", the usual rule for Adam), B = batch size x processes.
    lr_scaling: Literal["none", "linear", "sqrt"] = "none"
    lr_reference_batch: int = Field(32, ge=1)
    weight_decay: float = Field(0.0, ge=0.0)
    # A registered joint loss (`handzoo list losses`) and its options, e.g.
    # loss=l1_pa with loss_cfg={pa_weight: 3}. A model's own terms (MANO priors) add to it.
    loss: str = "l1"
    loss_cfg: dict[str, Any] = Field(default_factory=dict)
    # Written by the runner: every term of the training loss and its weight.
    # Informative only (recomputed by every run).
    loss_terms: dict[str, Any] = Field(default_factory=dict)
    schedule: Literal["constant", "cosine", "late_cosine"] = "constant"
    warmup_steps: int = Field(0, ge=0)
    # late_cosine: the fraction of steps at constant lr before the cosine phase
    # (the seed's run 3: 50 of 200 epochs).
    constant_fraction: float = Field(0.25, ge=0.0, le=1.0)
    grad_clip: float | None = Field(None, gt=0.0)
    # Parameter-name prefixes left out of training (e.g. [backbone.stem, backbone.stage1] keeps a
    # pretrained trunk's early stages as they are while fine-tuning the rest).
    freeze: list[str] = Field(default_factory=list)

    def scaled_lr(self, batch: int) -> float:
        """The learning rate for a global batch of ``batch`` samples under ``lr_scaling``."""
        ratio = batch / self.lr_reference_batch
        factor = {"none": 1.0, "linear": ratio, "sqrt": ratio**0.5}[self.lr_scaling]
        return self.lr * factor

    @model_validator(mode="before")
    @classmethod
    def _pa_weight_moved(cls, data: Any) -> Any:
        """Configs written before losses were registered kept ``pa_weight`` here."""
        if isinstance(data, dict) and "pa_weight" in data:
            data = dict(data)
            weight = data.pop("pa_weight")
            if data.get("loss") == "l1_pa":
                data["loss_cfg"] = {"pa_weight": weight, **dict(data.get("loss_cfg") or {})}
        return data


class RunSection(_Section):
    """Length of training, device, outputs and checkpoints."""

    epochs: int | None = Field(None, ge=1)
    max_steps: int | None = Field(None, ge=1)
    # numpy's legacy seeding (and many libraries') takes 32 bits; larger seeds are refused, not wrapped.
    seed: int = Field(0, ge=0, le=2**32 - 1)
    device: str = "auto"
    out: str | None = None
    checkpoint_every: int = Field(500, ge=1)
    amp: bool = True
    compile: bool = False
    log_every: int = Field(10, ge=1)
    # When set and max_steps/epochs are not, the run measures its speed during
    # warm-up and fixes max_steps so that training ends this many minutes after
    # the run started (data preparation included).
    time_budget_min: float | None = Field(None, gt=0.0)


class RunConfig(_Section):
    """The fully resolved configuration of one ``handzoo run``."""

    model: ModelConfig = Field(default_factory=ModelConfig)
    data: DataConfig = Field(default_factory=DataConfig)
    optim: OptimConfig = Field(default_factory=OptimConfig)
    run: RunSection = Field(default_factory=RunSection)

    # -- YAML ------------------------------------------------------------------
    @classmethod
    def from_yaml(cls, path: str | Path) -> RunConfig:
        path = Path(path)
        try:
            raw = yaml.safe_load(path.read_text()) or {}
        except (OSError, yaml.YAMLError) as exc:
            raise ConfigError(f"{path}: cannot read config ({' '.join(str(exc).split())})") from exc
        return validate_config(raw, source=str(path))

    def to_yaml(self, path: str | Path | None = None) -> str:
        text = yaml.safe_dump(self.model_dump(mode="json"), sort_keys=False)
        if path is not None:
            from handzoo.files import write_text_atomic

            write_text_atomic(path, text, "config")
        return text

    def with_overrides(self, overrides: list[str] | dict[str, Any]) -> RunConfig:
        """A copy with dotted-key overrides applied and validated."""
        return apply_overrides(self, overrides)


def _field_choices(annotation: Any) -> list[str] | None:
    """Allowed values of a Literal annotation (also inside Optional)."""
    if typing.get_origin(annotation) is Literal:
        return [str(a) for a in typing.get_args(annotation)]
    for arg in typing.get_args(annotation):
        found = _field_choices(arg)
        if found:
            return found
    return None


def _describe_field(model: type[BaseModel], path: list[str]) -> str:
    """'allowed: a, b' for Literal fields, else the field's type."""
    target: Any = model
    for key in path:
        fields = getattr(target, "model_fields", None)
        if not fields or key not in fields:
            return ""
        annotation = fields[key].annotation
        target = annotation
    choices = _field_choices(target)
    if choices:
        return f"allowed values: {', '.join(choices)}"
    return f"expected {getattr(target, '__name__', str(target)).replace('typing.', '')}"


def _known_keys(model: type[BaseModel], path: list[str]) -> list[str]:
    target: Any = model
    for key in path:
        fields = getattr(target, "model_fields", None)
        if not fields or key not in fields:
            return []
        target = fields[key].annotation
    fields = getattr(target, "model_fields", None)
    return list(fields) if fields else []


def validate_config(raw: dict[str, Any], source: str = "config") -> RunConfig:
    """Validate a nested dict; the error names the first bad key and what is allowed."""
    try:
        return RunConfig.model_validate(raw)
    except ValidationError as exc:
        err = exc.errors()[0]
        loc = [str(p) for p in err["loc"]]
        key = ".".join(loc)
        if err["type"] == "extra_forbidden":
            known = _known_keys(RunConfig, loc[:-1])
            close = difflib.get_close_matches(loc[-1], known, n=1)
            hint = f" (did you mean {'.'.join([*loc[:-1], close[0]])!r}?)" if close else ""
            raise ConfigError(
                f"{source}: unknown key {key!r}{hint}; valid keys here: {', '.join(known)}"
            ) from None
        described = _describe_field(RunConfig, loc)
        raise ConfigError(
            f"{source}: invalid value for {key!r}: {err['msg']}" + (f"; {described}" if described else "")
        ) from None


def parse_override(item: str) -> tuple[list[str], Any]:
    """``'optim.lr=3e-4'`` -> (['optim', 'lr'], 0.0003). Values are YAML."""
    if "=" not in item:
        raise ConfigError(f"--set {item!r}: expected key=value, e.g. optim.lr=3e-4")
    key, _, text = item.partition("=")
    key = key.strip()
    if not key or any(not part for part in key.split(".")):
        raise ConfigError(f"--set {item!r}: empty key; keys look like optim.lr or data.batch_size")
    try:
        value = yaml.safe_load(text) if text.strip() else None
    except yaml.YAMLError as exc:
        # ReaderError (a control character, say) has no ``problem``; every YAML error has a first line
        reason = getattr(exc, "problem", None) or str(exc).strip().splitlines()[0]
        raise ConfigError(f"--set {item!r}: cannot parse value ({reason})") from None
    if isinstance(value, str) and any(c in value for c in "eE."):
        # YAML 1.1 reads '1e-4' as a string; a number is what the user meant.
        with contextlib.suppress(ValueError):
            value = float(value)
    return key.split("."), value


def apply_overrides(cfg: RunConfig, overrides: list[str] | dict[str, Any]) -> RunConfig:
    """Apply ``key=value`` strings (or a {dotted key: value} dict) to a copy of ``cfg``."""
    items = (
        [(k.split("."), v) for k, v in overrides.items()]
        if isinstance(overrides, dict)
        else [parse_override(o) for o in overrides]
    )
    raw = cfg.model_dump(mode="python")
    for path, value in items:
        node = raw
        for depth, key in enumerate(path[:-1]):
            if not isinstance(node.get(key), dict):
                if key not in node:
                    known = _known_keys(RunConfig, path[:depth])
                    raise ConfigError(
                        f"unknown key {'.'.join(path[: depth + 1])!r}; valid keys here: {', '.join(known)}"
                    )
                raise ConfigError(f"{'.'.join(path[: depth + 1])!r} is a value, not a section")
            node = node[key]
        node[path[-1]] = value
    return validate_config(raw, source="--set")
