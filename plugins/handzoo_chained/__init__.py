"""First-party plugin: the seed report's chained encoder ("Pipelining ResNets", §2.2).

Registers the model ``chained-r50-r50-r34``: ResNet50 -> ResNet50 -> ResNet34,
each stage handing a smaller image-like embedding to the next, the last one
feeding the joint head; trained end to end on one loss. ``stages``,
``embed_sizes`` and ``head`` are options, e.g.
``handzoo.create_model("chained-r50-r50-r34", stages=["resnet18", "resnet18"])``.
See :mod:`handzoo_chained.chained` for how one stage feeds the next, and why.
"""

from __future__ import annotations

from typing import Any

from handzoo.plugin_api import hookimpl

DEFAULT_STAGES = ("resnet50", "resnet50", "resnet34")


def _chained(
    stages: list[str] | tuple[str, ...] = DEFAULT_STAGES,
    embed_sizes: list[int] | None = None,
    image_size: int = 128,
    head: str = "direct",
    head_cfg: dict[str, Any] | None = None,
    backbone_pretrained: bool = False,
):
    """Encoders in sequence, each shrinking the embedding; the last gives the joints."""
    from handzoo_chained.chained import build_chained

    return build_chained(
        stages=list(stages),
        embed_sizes=embed_sizes,
        image_size=image_size,
        head=head,
        head_cfg=head_cfg,
        backbone_pretrained=backbone_pretrained,
    )


@hookimpl
def register_models(register):
    register(
        "chained-r50-r50-r34",
        _chained,
        description="2×ResNet50 + ResNet34 chained encoders, one loss (the seed's pipelined ResNets)",
        family="chained",
    )


@hookimpl
def register_catalogues(register):
    """This plugin's architectures and recipes (zoo.yaml beside this file)."""
    from pathlib import Path

    register(Path(__file__).with_name("zoo.yaml"))
