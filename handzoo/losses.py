"""The training loss of a run: the configured joint loss plus the terms a model adds on purpose.

Two parts, both explicit:

* the **joint loss**, a registered ``loss`` (``handzoo list losses``; the
  first-party ones are ``l1``, ``l2``, ``smooth_l1``, ``l1_pa``), chosen by
  ``optim.loss`` with options ``optim.loss_cfg``. It always applies, whatever
  the model. A loss factory is ``factory(**options) -> fn`` with
  ``fn(output, batch) -> {"loss": total, <part>: value, ...}``: ``output`` a
  :class:`handzoo.HandOutput`, ``batch`` the collated samples (``joints3d``
  (B,21,3) metres, camera frame, canonical order); scalars, metres;
* **extra terms** of a model that implements :class:`ExtraLosses` (the MANO
  head's priors and parameter supervision): ``extra_loss_weights()`` names
  every term and its weight, ``extra_losses(output, batch)`` gives their
  unweighted values. Composed models (:class:`handzoo.model.HandModel`, the
  chained encoder) forward their head's.

The total is ``joint["loss"] + Σ weight_k · extra_k``. :meth:`TrainingLoss.describe`
lists every term with its weight; the runner writes it into config.yaml
(``optim.loss_terms``) and the model card, so a run says what it trained on.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

from handzoo.interfaces import ExtraLosses, unwrap_model

if TYPE_CHECKING:
    import torch

    from handzoo.output import HandOutput

Batch = Mapping[str, Any]
LossFn = Callable[["HandOutput", Batch], dict[str, "torch.Tensor"]]


def merge_loss_weights(defaults: Mapping[str, float], given: Mapping[str, float] | None, part: str) -> dict:
    """A part's term weights: ``defaults`` updated by ``given``; an unknown term is a one-line error.

    Raises:
        ConfigError: naming the unknown terms and the part's own (the joint loss is never one of them).
    """
    from handzoo.errors import ConfigError

    unknown = sorted(set(given or {}) - set(defaults))
    if unknown:
        raise ConfigError(
            f"loss_weights names {', '.join(map(repr, unknown))}; {part}'s terms are "
            f"{', '.join(defaults)} (the joint loss is the run's optim.loss)"
        )
    return {**defaults, **(given or {})}


def root_relative_target(batch: Batch, like: torch.Tensor) -> torch.Tensor:
    """The batch's joints3d (B,21,3) with the wrist subtracted, in ``like``'s dtype and device."""
    gt = batch["joints3d"].to(device=like.device, dtype=like.dtype)
    return gt - gt[:, :1]


class TrainingLoss:
    """``joint loss + Σ w_k · extra_k``; calling it returns every term and the total under ``loss``.

    Args:
        joint: the joint loss function (a built registry ``loss``).
        joint_name: its registry name; ``joint_options`` its options (for :meth:`describe`).
        extra: the model part that adds terms, or None.
    """

    def __init__(
        self,
        joint: LossFn,
        joint_name: str,
        joint_options: Mapping[str, Any] | None = None,
        extra: ExtraLosses | None = None,
    ) -> None:
        self.joint, self.joint_name = joint, joint_name
        self.joint_options = dict(joint_options or {})
        self.weights = dict(extra.extra_loss_weights()) if extra is not None else {}
        # A part without terms (the direct head) costs nothing per step.
        self.extra = extra if self.weights else None

    def __call__(self, output: HandOutput, batch: Batch) -> dict[str, torch.Tensor]:
        parts = dict(self.joint(output, batch))
        if "loss" not in parts:
            raise ValueError(f"loss {self.joint_name!r} returned no 'loss' key (got {sorted(parts)})")
        total = parts.pop("loss")
        terms = {"joints": total, **{k: v for k, v in parts.items() if k != "joints"}}
        if self.extra is not None:
            for name, value in self.extra.extra_losses(output, batch).items():
                if name not in self.weights:
                    raise ValueError(
                        f"{type(self.extra).__name__}.extra_losses returned {name!r}, which "
                        f"extra_loss_weights does not list ({sorted(self.weights)})"
                    )
                terms[name] = value
                total = total + self.weights[name] * value
        return {"loss": total, **terms}

    def describe(self) -> dict[str, Any]:
        """Every term and its weight, e.g. ``{"joints": {"loss": "l1_pa", "pa_weight": 1.0, "weight": 1.0},
        "pose_prior": 0.0001}``."""
        out: dict[str, Any] = {"joints": {"loss": self.joint_name, **self.joint_options, "weight": 1.0}}
        out.update(self.weights)
        return out


def extra_losses_of(model: Any) -> ExtraLosses | None:
    """The part of ``model`` that adds loss terms (the model itself when it implements them)."""
    inner = unwrap_model(model)
    return inner if isinstance(inner, ExtraLosses) else None


def build_training_loss(
    model: Any, name: str = "l1", options: Mapping[str, Any] | None = None
) -> TrainingLoss:
    """The run's loss for ``model``: registered joint loss ``name`` (with ``options``) plus its extra terms.

    Raises:
        UnknownNameError: for an unregistered loss (lists the closest names).
        ConfigError: for an option the loss does not take.
    """
    from handzoo.builder import checked_build
    from handzoo.plugins import get_registry

    joint = checked_build("loss", name, **dict(options or {}))
    effective = {**get_registry().get("loss", name).default_cfg, **dict(options or {})}
    return TrainingLoss(joint, name, effective, extra_losses_of(model))
