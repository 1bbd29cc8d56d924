"""handzoo-example-plugin: one part of every kind, registered through handzoo's hooks.

Registering costs nothing: the factories import torch and the parts (in
:mod:`handzoo_example.parts`) only when something is built, so ``handzoo list``
stays fast. Every factory's keyword defaults are its options
(``handzoo list --json`` shows them; ``--set model.options.width=32`` sets one).
"""

from __future__ import annotations

from pathlib import Path

from handzoo.plugin_api import get_registry, hookimpl


# -- backbone: images (B,3,H,W) -> features (B,C,h,w), with num_features and preprocessing
def tiny_cnn(width: int = 16):
    """Three stride-2 convolutions (a backbone small enough for a CPU test)."""
    from handzoo_example.parts import TinyCNN

    return TinyCNN(width=width)


@hookimpl
def register_backbones(register):
    register("example-tinycnn", tiny_cnn)


# -- head: factory(in_features, **options); float32 features -> HandOutput (root-relative metres)
def mlp_head(in_features: int, hidden: int = 64):
    """Pool, one hidden layer, 63 joint coordinates (root-relative)."""
    from handzoo_example.parts import MLPHead

    return MLPHead(in_features, hidden=hidden)


@hookimpl
def register_heads(register):
    register("example-mlp", mlp_head)


# -- model: images -> HandOutput; build_hand_model composes registered parts by name
def tiny_model(image_size: int = 32, width: int = 16, hidden: int = 64):
    """The example backbone + the example head."""
    from handzoo.plugin_api import build_hand_model

    parts = {"backbone_cfg": {"width": width}, "head_cfg": {"hidden": hidden}}
    return build_hand_model("example-tinycnn", "example-mlp", image_size, **parts)


@hookimpl
def register_models(register):
    register("example-tiny", tiny_model, paper="none: a plugin example")


# -- augmenter: aug(sample, rng) -> sample on raw numpy samples
def noise(p: float = 0.5, sigma: float = 8.0):
    """Gaussian pixel noise (grey levels); the labels are untouched."""
    from handzoo_example.parts import Noise

    return Noise(p=p, sigma=sigma)


@hookimpl
def register_augmenters(register):
    register("example-noise", noise)


# -- dataset: the runner passes split, image_size, augment, augment_cfg, mean, std, val_fraction, seed
def dots(
    split: str = "train",
    image_size: int = 32,
    augment=None,
    augment_cfg=None,
    mean=(0.5, 0.5, 0.5),
    std=(0.25, 0.25, 0.25),
    val_fraction: float = 0.25,
    seed: int | None = None,
    num: int = 64,
):
    """Random hands drawn as dots on black, with exact labels (no download)."""
    from handzoo_example.parts import DotHands

    return DotHands(split, image_size, augment, augment_cfg, mean, std, val_fraction, seed, num)


@hookimpl
def register_datasets(register):
    register("example-dots", dots)


# -- loss: fn(output, batch) -> {"loss": total, ...}; chosen with --set optim.loss=example-wing
def wing(width_mm: float = 10.0, curvature_mm: float = 2.0):
    """Wing loss (Feng et al., CVPR 2018) on root-relative joint coordinates, in millimetres."""
    from handzoo_example.parts import wing_loss

    return lambda output, batch: wing_loss(output, batch, width_mm, curvature_mm)


@hookimpl
def register_losses(register):
    register("example-wing", wing)


# -- metric: fn(pred, gt) -> (N,) per sample; reported as the mean in metrics.json and the leaderboard
def pck20(threshold_m: float = 0.02):
    """Fraction of joints within 20 mm, without alignment (root-relative)."""
    from handzoo_example.parts import pck

    return lambda pred, gt: pck(pred, gt, threshold_m)


@hookimpl
def register_metrics(register):
    register("example_pck20", pck20, inputs="joints", units="fraction", higher_is_better=True)


# -- detector: detect(image (H,W,3) uint8 RGB) -> list[Detection], boxes in the image's pixels
def brightest(threshold: int = 200):
    """The box around the bright pixels (the dot hands of example-dots), or no hand."""
    from handzoo_example.parts import BrightBox

    return BrightBox(threshold)


@hookimpl
def register_detectors(register):
    register("example-bright", brightest)


# -- catalogue: architectures, recipes and weights beside the models
@hookimpl
def register_catalogues(register):
    register(Path(__file__).with_name("zoo.yaml"))


# -- command: a `handzoo` subcommand
@hookimpl
def register_commands(app):
    import typer

    @app.command("example-info")
    def example_info(as_json: bool = typer.Option(False, "--json", help="Print JSON.")) -> None:
        """List what the example plugin registered."""
        import json

        found = [
            {"kind": e.kind, "name": e.name} for e in get_registry() if e.plugin == "example"
        ]
        typer.echo(json.dumps(found) if as_json else "\n".join(f"{e['kind']}: {e['name']}" for e in found))
