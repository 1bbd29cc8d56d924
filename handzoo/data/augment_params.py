"""Typed augmenter parameters: the base model and its validation (pydantic; no image libraries).

Every augmenter has a probability ``p`` (applied to a sample with probability
``p``) and its own options with defaults, declared as a subclass of
:class:`AugmenterParams` (the first-party ones are in the ``handzoo_data``
plugin). :func:`validate_params` turns a dict into the model or raises
:class:`handzoo.errors.ConfigError` naming the augmenter, the bad option and
the allowed values.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from handzoo.errors import ConfigError


class AugmenterParams(BaseModel):
    """Options shared by every augmenter."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    p: float = Field(0.5, ge=0.0, le=1.0, description="probability of applying it to a sample")


def describe_options(model: type[BaseModel]) -> str:
    """``name=default (allowed)`` for every option, from the model's JSON schema."""
    props = model.model_json_schema().get("properties", {})
    parts = []
    for name, field in model.model_fields.items():
        schema = props.get(name, {})
        allowed = _allowed(schema)
        parts.append(f"{name}={field.default!r}" + (f" ({allowed})" if allowed else ""))
    return "; ".join(parts)


def _allowed(schema: dict[str, Any]) -> str:
    if "enum" in schema:
        return " | ".join(repr(v) for v in schema["enum"])
    items = schema.get("items")
    if isinstance(items, dict) and "enum" in items:
        return "any of " + ", ".join(repr(v) for v in items["enum"])
    lo, hi = schema.get("minimum"), schema.get("maximum")
    if lo is not None and hi is not None:
        return f"{lo}..{hi}"
    if lo is not None:
        return f">= {lo}"
    return ""


def validate_params(name: str, model: type[AugmenterParams], params: dict[str, Any]) -> AugmenterParams:
    """Build ``model`` from ``params``, or raise ConfigError naming ``name`` and the allowed values."""
    unknown = sorted(set(params) - set(model.model_fields))
    if unknown:
        raise ConfigError(
            f"augmenter {name!r} has no option {', '.join(repr(u) for u in unknown)}; "
            f"its options are: {describe_options(model)}"
        )
    try:
        return model(**params)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(x) for x in err['loc']) or 'options'}={err.get('input')!r}: {err['msg']}"
            for err in exc.errors()
        )
        raise ConfigError(f"augmenter {name!r}: {problems}. Allowed: {describe_options(model)}") from None
