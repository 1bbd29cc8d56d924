"""The zoo.yaml schema (pydantic v2), validated on load.

```yaml
version: 1
recipes:
  NAME: {description, data: {...}, optim: {...}, run: {...}}   # sections of RunConfig
architectures:
  MODEL:                       # a registered model name
    backbone: resnet101        # informative; the model's factory decides
    head: direct
    options: {}                # create_model options
    recipe: NAME
    references: [{value, metric, dataset, split, source, note}]
    weights: [{tag, url, sha256, size, metrics, params, gflops, input_size, training_data, licence, notes}]
```

A weight ``url`` that is a plain file name (no scheme, no folder) names a
file beside the catalogue that lists it (a plugin ships its weights so).

Security: weight URLs may only use the schemes in :data:`ALLOWED_SCHEMES`,
file names may not contain path separators or ``..``, and a weight file must
be ``.safetensors`` except inside a package (``pypi:DIST==VERSION/inner/path``,
:mod:`handzoo.zoo.pypi`): that file is converted once by the model's
``weights_converter``, and a pickle (``.pth``, ``.pkl``, ...) is refused there too.
"""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import urlparse

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

SCHEMA_VERSION = 1
ALLOWED_SCHEMES = ("https", "http", "file", "hf", "pypi")
_SHA256 = re.compile(r"^[0-9a-f]{64}$")
_PLAIN_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.+-]*$")  # a file name without any folder
_TAG = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Reference(_Strict):
    """A number reported elsewhere (a paper, the seed report), not produced by handzoo."""

    value: float
    metric: str = "pa_mpjpe_mm"
    dataset: str = "freihand"
    split: str = "eval"
    source: str
    note: str = ""


class Recipe(_Strict):
    """Overrides of :class:`handzoo.config.RunConfig` sections.

    ``plans``: per device kind (``cpu``, ``cuda``), dotted overrides of the
    embedded default's plan (:func:`handzoo.runner.plan.default_plan`) for this
    model, e.g. a pretrained network that must keep its own input size and a
    fine-tuning learning rate: ``{cpu: {data.image_size: 224, optim.lr: 3.0e-5}}``.
    """

    description: str = ""
    data: dict[str, Any] = Field(default_factory=dict)
    optim: dict[str, Any] = Field(default_factory=dict)
    run: dict[str, Any] = Field(default_factory=dict)
    plans: dict[str, dict[str, Any]] = Field(default_factory=dict)

    @field_validator("plans")
    @classmethod
    def _plans(cls, v: dict[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
        unknown = sorted(set(v) - {"cpu", "cuda"})
        if unknown:
            raise ValueError(f"plans: unknown device kind(s) {unknown}; use cpu or cuda")
        return v

    def overrides(self) -> dict[str, Any]:
        """Dotted keys for :meth:`RunConfig.with_overrides`."""
        return {f"{sec}.{k}": v for sec in ("data", "optim", "run") for k, v in getattr(self, sec).items()}


def parse_ref(ref: str) -> tuple[str, str | None]:
    """``NAME[:TAG]`` -> (model name, tag or None)."""
    from handzoo.errors import UsageError

    name, sep, tag = ref.rpartition(":")
    if not sep:
        return ref, None
    if not name or not tag:
        raise UsageError(f"{ref!r}: expected NAME or NAME:TAG, e.g. resnet101:freihand")
    return name, tag


def file_name_of(url: str) -> str:
    """The last path component of a weight URL."""
    return urlparse(url).path.rstrip("/").rsplit("/", 1)[-1]


class WeightEntry(_Strict):
    """One published set of weights of an architecture."""

    tag: str
    url: str
    sha256: str
    size: int = Field(gt=0)
    metrics: dict[str, dict[str, dict[str, float]]] = Field(
        default_factory=dict, description="dataset -> split -> metric -> value"
    )
    params: int | None = None
    gflops: float | None = None
    input_size: int = 128
    training_data: str = ""
    licence: str = "MIT"
    notes: str = ""

    @field_validator("tag")
    @classmethod
    def _tag(cls, v: str) -> str:
        if not _TAG.match(v):
            raise ValueError(f"tag {v!r} must be letters, digits, '.', '_' or '-'")
        return v

    @field_validator("sha256")
    @classmethod
    def _sha(cls, v: str) -> str:
        if not _SHA256.match(v):
            raise ValueError("sha256 must be 64 lower-case hex digits")
        return v

    @field_validator("url")
    @classmethod
    def _url(cls, v: str) -> str:
        parsed = urlparse(v)
        if not parsed.scheme and _PLAIN_NAME.match(v):
            # A plain file name: beside the catalogue that lists it (resolved on load, catalogue.parse_zoo).
            if not v.endswith(".safetensors"):
                raise ValueError(f"url {v!r}: weights must be a .safetensors file (pickles are never loaded)")
            return v
        if parsed.scheme not in ALLOWED_SCHEMES:
            raise ValueError(
                f"url scheme {parsed.scheme or '(none)'!r} is not allowed; use one of {ALLOWED_SCHEMES}"
            )
        name = file_name_of(v)
        if not name or name in (".", "..") or "\\" in name or ".." in name:
            raise ValueError(f"url {v!r} does not end in a plain file name")
        if parsed.scheme == "pypi":  # a file inside a package, converted once (any format but a pickle)
            from handzoo.errors import UsageError
            from handzoo.zoo.pypi import parse_pypi_url

            try:
                parse_pypi_url(v)
            except UsageError as exc:
                raise ValueError(str(exc)) from None
            return v
        if not name.endswith(".safetensors"):
            raise ValueError(f"url {v!r}: weights must be a .safetensors file (pickles are never loaded)")
        return v

    @property
    def file_name(self) -> str:
        return file_name_of(self.url)


class Architecture(_Strict):
    backbone: str | None = None
    head: str | None = None
    description: str = ""
    options: dict[str, Any] = Field(default_factory=dict)
    recipe: str | None = None
    references: list[Reference] = Field(default_factory=list)
    weights: list[WeightEntry] = Field(default_factory=list)
    # Where the entry came from (the catalogue file or a plugin's); set on load, never written.
    source: str | None = Field(None, exclude=True)

    def weight(self, tag: str | None = None) -> WeightEntry | None:
        """The entry with ``tag``, or the first (the default) when ``tag`` is None."""
        if tag is None:
            return self.weights[0] if self.weights else None
        return next((w for w in self.weights if w.tag == tag), None)


class Zoo(_Strict):
    version: int = SCHEMA_VERSION
    recipes: dict[str, Recipe] = Field(default_factory=dict)
    architectures: dict[str, Architecture] = Field(default_factory=dict)
    # Plugin catalogue entries refused on load (a name already taken), one line each; never written.
    refused: list[str] = Field(default_factory=list, exclude=True)

    @field_validator("version")
    @classmethod
    def _version(cls, v: int) -> int:
        if v != SCHEMA_VERSION:
            raise ValueError(
                f"zoo schema version {v} is not supported (this handzoo reads version {SCHEMA_VERSION})"
            )
        return v

    @model_validator(mode="after")
    def _recipes_exist(self) -> Zoo:
        for name, arch in self.architectures.items():
            if arch.recipe is not None and arch.recipe not in self.recipes:
                raise ValueError(
                    f"architecture {name!r} uses recipe {arch.recipe!r}, which is not defined "
                    f"(recipes: {', '.join(self.recipes) or 'none'})"
                )
            tags = [w.tag for w in arch.weights]
            if len(tags) != len(set(tags)):
                raise ValueError(f"architecture {name!r} lists a weight tag twice: {tags}")
        return self
