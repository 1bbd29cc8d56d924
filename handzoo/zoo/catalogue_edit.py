"""Adding a weight entry to a zoo.yaml file while keeping everything else in it, comments included.

Only the architecture's ``weights:`` block is rewritten (same tag: replaced;
new tag: appended, so the catalogue's default, the first entry, stays); the
rest of the file stays as it was. A file the targeted edit cannot handle is
rewritten whole (its comments are then lost, and the caller is told).
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any

import yaml

from handzoo.errors import ConfigError
from handzoo.zoo.catalogue import parse_zoo
from handzoo.zoo.schema import WeightEntry, Zoo


def add_weight_entry(zoo_file: str | Path, name: str, entry: WeightEntry) -> bool:
    """Add ``entry`` to architecture ``name`` in ``zoo_file`` (replacing one with the same tag).

    The new catalogue is validated with the schema before anything is written,
    and written atomically. Returns True when only the architecture's
    ``weights:`` block was rewritten (comments elsewhere kept), False when the
    file had to be re-dumped whole (unusual layouts such as flow-style maps).
    """
    from handzoo.zoo import catalogue

    path = Path(zoo_file)
    text = path.read_text()
    data = yaml.safe_load(text) or {}
    archs = data.setdefault("architectures", {}) or {}
    data["architectures"] = archs
    arch = archs.setdefault(name, {}) or {}
    archs[name] = arch
    weights = list(arch.get("weights") or [])
    new = entry.model_dump(mode="json")
    at = next((i for i, w in enumerate(weights) if isinstance(w, dict) and w.get("tag") == entry.tag), None)
    if at is None:
        weights.append(new)
    else:
        weights[at] = new
    arch["weights"] = weights
    try:
        Zoo.model_validate(data)
    except Exception as exc:
        raise ConfigError(f"{path}: the updated catalogue would not be valid ({exc})") from None
    updated = _targeted_update(text, name, weights)
    kept = updated is not None and yaml.safe_load(updated) == data
    if not kept:
        updated = yaml.safe_dump(data, sort_keys=False, width=110)
    parse_zoo(updated, str(path))
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(updated)
    os.replace(tmp, path)
    if hasattr(catalogue, "_load_cached"):  # its cache key is the mtime, which may not have ticked
        catalogue._load_cached.cache_clear()
    return kept


_KEY = r"(?:{k}|'{k}'|\"{k}\")"


def _indent(line: str) -> int:
    return len(line) - len(line.lstrip(" "))


def _is_content(line: str) -> bool:
    stripped = line.strip()
    return bool(stripped) and not stripped.startswith("#")


def _block_end(lines: list[str], start: int, stop: int, indent: int, list_at_indent: bool = False) -> int:
    """First line after ``start`` in [start, stop) whose content is at or left of ``indent``.

    Trailing blank and comment lines are left outside the block (they usually
    introduce what follows). ``list_at_indent`` keeps ``- item`` lines at
    ``indent`` inside (YAML lets a list sit at its key's indentation).
    """
    end = stop
    for i in range(start + 1, stop):
        line = lines[i]
        if not _is_content(line):
            continue
        if _indent(line) < indent or (
            _indent(line) == indent and not (list_at_indent and line.lstrip().startswith("- "))
        ):
            end = i
            break
    while end > start + 1 and not _is_content(lines[end - 1]):
        end -= 1
    return end


def _dump_block(value: dict[str, Any], indent: int) -> list[str]:
    text = yaml.safe_dump(value, sort_keys=False, width=110, default_flow_style=False)
    return [(" " * indent + line if line.strip() else line) + "\n" for line in text.splitlines()]


def _targeted_update(text: str, name: str, weights: list[dict[str, Any]]) -> str | None:
    """``text`` with only ``architectures.<name>.weights`` rewritten; None when the layout is unusual."""
    lines = text.splitlines(keepends=True)
    if lines and not lines[-1].endswith("\n"):
        lines[-1] += "\n"
    top = next((i for i, ln in enumerate(lines) if re.match(r"^architectures:\s*(#.*)?$", ln)), None)
    if top is None:
        return None
    arch_end = _block_end(lines, top, len(lines), 0)
    children = [i for i in range(top + 1, arch_end) if _is_content(lines[i])]
    child_indent = _indent(lines[children[0]]) if children else 2
    key = re.compile(rf"^ {{{child_indent}}}{_KEY.format(k=re.escape(name))}:\s*(#.*)?$")
    at = next((i for i in children if key.match(lines[i])), None)
    if at is None:  # a new architecture, appended to the architectures block
        block = _dump_block({name: {"weights": weights}}, child_indent)
        return "".join(lines[:arch_end] + block + lines[arch_end:])
    end = _block_end(lines, at, arch_end, child_indent)
    inner = [i for i in range(at + 1, end) if _is_content(lines[i])]
    field_indent = _indent(lines[inner[0]]) if inner else child_indent + 2
    w_key = re.compile(rf"^ {{{field_indent}}}weights:\s*(#.*)?$")
    w_at = next((i for i in inner if w_key.match(lines[i]) and _indent(lines[i]) == field_indent), None)
    block = _dump_block({"weights": weights}, field_indent)
    if w_at is None:
        return "".join(lines[:end] + block + lines[end:])
    w_end = _block_end(lines, w_at, end, field_indent, list_at_indent=True)
    return "".join(lines[:w_at] + block + lines[w_end:])
