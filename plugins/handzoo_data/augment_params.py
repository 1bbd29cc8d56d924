"""Typed parameters of the first-party augmenters (pydantic; no image libraries imported here)."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator

from handzoo.plugin_api import AugmenterParams

Border = Literal["constant", "reflect", "replicate"]
Texture = Literal["blobs", "noise", "stripes", "checker"]
Shape = Literal["rectangle", "ellipse", "polygon"]


class BackgroundParams(AugmenterParams):
    """Replace the pixels outside the hand mask."""

    p: float = Field(0.8, ge=0.0, le=1.0)
    folder: str | None = Field(
        None, description="folder of background images (jpg/png), searched recursively"
    )
    folder_fraction: float = Field(
        0.8, ge=0.0, le=1.0, description="share of backgrounds from `folder` (rest: textures)"
    )
    textures: tuple[Texture, ...] = Field(("blobs", "noise", "stripes", "checker"), min_length=1)
    cache_size: int = Field(256, ge=0, description="decoded folder images kept in memory")


class RotateParams(AugmenterParams):
    """In-plane rotation about the camera's optical axis."""

    p: float = Field(1.0, ge=0.0, le=1.0)
    degrees: float = Field(180.0, ge=0.0, le=180.0, description="angle drawn from [-degrees, degrees]")
    center: Literal["image", "principal_point"] = "image"
    border: Border = "constant"


class FlipParams(AugmenterParams):
    """Horizontal mirror (a right hand becomes a left hand)."""

    p: float = Field(0.5, ge=0.0, le=1.0)
    border: Border = "constant"


class OccludeParams(AugmenterParams):
    """Random filled shapes over the image."""

    p: float = Field(0.5, ge=0.0, le=1.0)
    max_shapes: int = Field(3, ge=1, le=32)
    size: tuple[float, float] = Field(
        (0.08, 0.35), description="shape size range, fraction of the image side"
    )
    shapes: tuple[Shape, ...] = Field(("rectangle", "ellipse", "polygon"), min_length=1)

    @model_validator(mode="after")
    def _ordered(self) -> OccludeParams:
        lo, hi = self.size
        if not 0.0 < lo <= hi <= 1.0:
            raise ValueError(f"size must satisfy 0 < min <= max <= 1, got {self.size}")
        return self


class ColorParams(AugmenterParams):
    """Colour jitter; each factor is drawn from [1 - x, 1 + x], hue shift from [-hue, hue] turns."""

    p: float = Field(0.8, ge=0.0, le=1.0)
    brightness: float = Field(0.3, ge=0.0, le=1.0)
    contrast: float = Field(0.3, ge=0.0, le=1.0)
    saturation: float = Field(0.3, ge=0.0, le=1.0)
    hue: float = Field(0.05, ge=0.0, le=0.5)


class ScaleParams(AugmenterParams):
    """Zoom (log-uniform in ``scale``) and translation jitter: a crop of the image."""

    p: float = Field(1.0, ge=0.0, le=1.0)
    scale: tuple[float, float] = Field((0.85, 1.2), description="zoom range; > 1 zooms in")
    translate: float = Field(0.08, ge=0.0, le=0.5, description="shift, fraction of the image side")
    border: Border = "constant"

    @model_validator(mode="after")
    def _ordered(self) -> ScaleParams:
        lo, hi = self.scale
        if not 0.0 < lo <= hi <= 10.0:
            raise ValueError(f"scale must satisfy 0 < min <= max <= 10, got {self.scale}")
        return self


PARAMS: dict[str, type[AugmenterParams]] = {
    "background": BackgroundParams,
    "rotate": RotateParams,
    "flip": FlipParams,
    "occlude": OccludeParams,
    "color": ColorParams,
    "scale": ScaleParams,
}
