"""``handzoo publish``: turn a run folder into a hash-named weights file and a catalogue entry.

``publish_run(run_dir, name)`` writes ``NAME-<first 8 hex of sha256>.safetensors``
(the hash prefix in the name, like torchvision's ``resnet101-cd907fc2.pth``),
whose header carries the run's metadata (model, config, joint order, units,
input size, mean/std, metrics, handzoo version) plus the publication's (tag,
training data, licence, params, GFLOPs). The sha256 is of the final bytes;
the header is written with sorted keys so that publishing the same run twice
gives the same bytes, hence the same name.

It then adds or updates the weight entry (same tag: replaced; new tag:
appended, so the catalogue's default, the first entry, stays) of the
architecture NAME in a zoo file. Only the architecture's ``weights:`` block is
rewritten; the rest of the file, comments included, stays as it was.

Cost figures (params, GFLOPs) come from :mod:`handzoo.cost`; editing the zoo
file keeps its comments (:mod:`handzoo.zoo.catalogue_edit`).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from handzoo._version import __version__
from handzoo.cost import count_params, measure_gflops
from handzoo.errors import UsageError, first_line
from handzoo.files import replace_atomic
from handzoo.zoo.catalogue import zoo_source
from handzoo.zoo.catalogue_edit import add_weight_entry
from handzoo.zoo.schema import WeightEntry

if TYPE_CHECKING:
    pass

HASH_CHARS = 8


@dataclass
class Published:
    """What :func:`publish_run` did: the file, its catalogue entry and where the entry went."""

    name: str
    path: Path
    entry: WeightEntry
    zoo_file: Path
    comments_kept: bool


# ----------------------------------------------------------------------------- the file
def _canonical_header(path: Path) -> None:
    """Rewrite a safetensors header with sorted keys (same bytes for the same content).

    safetensors serialises the header from a hash map, so two saves of the same
    tensors and metadata can differ in key order. The header's JSON keeps its
    length when only the order changes, so the data offsets stay valid; if the
    re-serialised header would not fit, the file is left as written.
    """
    with open(path, "r+b") as f:
        length = int.from_bytes(f.read(8), "little")
        header = json.loads(f.read(length))
        text = json.dumps(header, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()
        if len(text) > length:
            return
        f.seek(8)
        f.write(text + b" " * (length - len(text)))  # trailing spaces are the format's padding


def _publish_file(
    run_weights: Path, dest: Path, file_stem: str, metadata: dict[str, str]
) -> tuple[Path, str]:
    """Write the tensors of ``run_weights`` with ``metadata`` into ``dest/<stem>-<sha8>.safetensors``.

    Returns (the path, the file's sha256).
    """
    from safetensors.torch import load_file, save_file

    from handzoo.zoo.hub import sha256_file

    dest.mkdir(parents=True, exist_ok=True)
    tmp = dest / f".{file_stem}.publishing.safetensors"
    save_file(load_file(str(run_weights)), str(tmp), metadata=metadata)
    _canonical_header(tmp)
    sha = sha256_file(tmp)
    final = dest / f"{file_stem}-{sha[:HASH_CHARS]}.safetensors"
    replace_atomic(tmp, final)  # the usual permissions: a web server can serve it
    return final, sha


def _run_summary(run_dir: Path) -> tuple[dict[str, str], dict[str, Any], dict[str, Any], int | None]:
    """(weights header, config, metrics, steps trained) of a run folder, with errors naming the file."""
    from handzoo.weights import read_metadata

    weights = run_dir / "model.safetensors"
    if not run_dir.is_dir():
        raise UsageError(f"{run_dir} is not a folder; give the --out folder of a `handzoo run`")
    if not weights.is_file():
        raise UsageError(
            f"{run_dir} holds no model.safetensors; is the run finished? (`handzoo run --resume`)"
        )
    meta = read_metadata(weights)
    if "model" not in meta or "config" not in meta:
        raise UsageError(f"{weights} was not written by `handzoo run` (its header has no model/config)")
    config = json.loads(meta["config"])
    metrics_file = run_dir / "metrics.json"
    metrics = json.loads(metrics_file.read_text() if metrics_file.is_file() else meta.get("metrics", "{}"))
    steps = None
    history = run_dir / "history.jsonl"
    if history.is_file():
        rows = [json.loads(line) for line in history.read_text().splitlines() if line.strip()]
        steps = max((int(r["step"]) for r in rows if "loss" in r), default=None)
    return meta, config, metrics, steps


def describe_training_data(data: dict[str, Any]) -> tuple[str, str]:
    """(short name for the tag and the metrics, one line for ``training_data``) of a run's data section.

    A FreiHAND-layout folder written by ``handzoo synth`` (it holds the
    generator's marker file) is synthetic data, whatever loader read it.
    """
    import json as _json

    from handzoo.data.synthetic.generator import MARKER

    name = str(data.get("name") or "unknown")
    root = data.get("root")
    marker = Path(root).expanduser() / MARKER if root else None
    if marker is not None and marker.is_file():
        try:
            meta = _json.loads(marker.read_text())
        except (OSError, ValueError):
            meta = {}
        return "synthetic", (
            f"synthetic hands from `handzoo synth` (generator {meta.get('version', '?')}, seed "
            f"{meta.get('seed', '?')}, {meta.get('num', '?')} images) read as {name}, train split"
        )
    if name == "synthetic":
        options = data.get("options") or {}
        return name, (
            f"synthetic hands, the embedded set (generator {options.get('generator', 'synth2 or earlier')}, "
            f"seed {options.get('generator_seed', 0)}), train split"
        )
    return name, f"{name} (train split)"


def _default_tag(data_name: str) -> str:
    tag = re.sub(r"[^A-Za-z0-9_.-]+", "-", data_name).strip("-.") or "weights"
    return tag if tag[0].isalnum() else f"w{tag}"


def _default_notes(config: dict[str, Any], steps: int | None) -> str:
    data, optim = config.get("data", {}), config.get("optim", {})
    trained = f"{steps} steps" if steps is not None else "a run"
    return (
        f"handzoo run: {trained} of batch {data.get('batch_size')} at {data.get('image_size')} px, "
        f"{optim.get('name')} lr {optim.get('lr')} {optim.get('schedule')}, "
        f"augment {', '.join(data.get('augment', [])) or 'none'}"
    )


def publish_run(
    run_dir: str | Path,
    name: str | None = None,
    *,
    zoo_file: str | Path | None = None,
    dest: str | Path | None = None,
    url_base: str | None = None,
    tag: str | None = None,
    training_data: str | None = None,
    licence: str = "MIT",
    notes: str | None = None,
    to: str | None = None,
) -> Published:
    """Publish a ``handzoo run`` folder: a hash-named weights file plus its catalogue entry.

    Args:
        run_dir: the run's ``--out`` folder (model.safetensors, metrics.json, ...).
        name: the architecture (a registered model name); default: the run's model.
        zoo_file: the catalogue to update; default: the one in use (``HANDZOO_ZOO``
            or the shipped zoo.yaml).
        dest: where the weights file goes; default ``RUN_DIR/publish``.
        url_base: the entry's url is ``url_base/<file name>``; default: ``hf://`` of
            ``to`` when uploading, else a ``file://`` URL of the written file.
        tag: the weights' tag (default: the training dataset's name).
        training_data, licence, notes: free text for the entry.
        to: ``hf://org/repo`` to upload the file to through huggingface_hub.

    Returns:
        A :class:`Published` with the file, the entry and the zoo file written.
    """
    from handzoo.builder import create_model

    run_dir = Path(run_dir)
    meta, config, metrics, steps = _run_summary(run_dir)
    recorded = meta["model"]
    name = name or recorded
    if name != recorded:
        raise UsageError(
            f"{run_dir} is a run of {recorded!r}; its weights can only be published as {recorded!r} "
            f"(--name {recorded}), since `create_model({name!r}, pretrained=True)` builds {name!r}"
        )
    target = _writable_zoo(zoo_file)
    model = create_model(weights=run_dir / "model.safetensors")
    image_size = int(json.loads(meta["input_size"])[-1])
    params, gflops = count_params(model), measure_gflops(model, image_size)
    data_name, described = describe_training_data(config.get("data", {}))
    tag = tag or _default_tag(data_name)
    training_data = training_data or described
    notes = notes if notes is not None else _default_notes(config, steps)
    header = {
        **meta,
        "tag": tag,
        "training_data": training_data,
        "licence": licence,
        "params": str(params),
        "gflops": str(gflops),
        "published_with": __version__,
    }
    out = Path(dest) if dest is not None else run_dir / "publish"
    path, sha = _publish_file(run_dir / "model.safetensors", out, name.replace("/", "-"), header)
    if to is not None:
        uploaded = upload_to_hf(path, to)
        url = url_base.rstrip("/") + "/" + path.name if url_base else uploaded
    else:
        url = url_base.rstrip("/") + "/" + path.name if url_base else path.resolve().as_uri()
    entry = WeightEntry(
        tag=tag,
        url=url,
        sha256=sha,
        size=path.stat().st_size,
        metrics={data_name: {"val": {k: float(f"{v:.6g}") for k, v in metrics.items() if _is_number(v)}}},
        params=params,
        gflops=gflops,
        input_size=image_size,
        training_data=training_data,
        licence=licence,
        notes=notes,
    )
    kept = add_weight_entry(target, name, entry)
    return Published(name=name, path=path, entry=entry, zoo_file=target, comments_kept=kept)


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _writable_zoo(zoo_file: str | Path | None) -> Path:
    """The catalogue file publish changes: ``--zoo``, else ``$HANDZOO_ZOO`` when it is a local file.

    The shipped zoo.yaml is part of the installed package: it changes only when
    ``--zoo`` names it, never as a default.
    """
    from handzoo.zoo.catalogue import _PACKAGED

    source = str(zoo_file) if zoo_file is not None else zoo_source()
    if source.startswith(("http://", "https://")):
        raise UsageError(f"the catalogue in use is a URL ({source}); pass --zoo FILE to update a local copy")
    path = Path(source.removeprefix("file://")).expanduser()
    if not path.is_file():
        raise UsageError(f"zoo file {path} does not exist; pass --zoo with an existing zoo.yaml")
    if zoo_file is None and path.resolve() == _PACKAGED.resolve():
        raise UsageError(
            f"publish adds an entry to a catalogue, and the one in use is the shipped {path}; name the one "
            f"to change with --zoo FILE (a copy: `cp {path} my-zoo.yaml`, then --zoo my-zoo.yaml, and "
            f"HANDZOO_ZOO=my-zoo.yaml to use it), or --zoo {path} to change the shipped one"
        )
    return path.resolve()  # the shipped handzoo/zoo.yaml is a link: update its target, keep the link


def upload_to_hf(path: Path, target: str) -> str:
    """Upload ``path`` to ``hf://org/repo`` (root of the repo); returns the file's hf:// URL."""
    from handzoo.zoo.hub import DownloadError, import_huggingface_hub

    parts = target.removeprefix("hf://").strip("/").split("/")
    if not target.startswith("hf://") or len(parts) != 2 or not all(parts):
        raise UsageError(f"--to {target}: expected hf://org/repo")
    hub = import_huggingface_hub(target)
    repo = "/".join(parts)
    try:
        hub.HfApi().upload_file(path_or_fileobj=str(path), path_in_repo=path.name, repo_id=repo)
    except Exception as exc:  # offline, no token, no such repo: one line either way
        reason = f"{type(exc).__name__}: {first_line(exc)}"
        raise DownloadError(
            f"{target}: uploading {path.name} failed ({reason}); check the network "
            "and `huggingface-cli login`, or upload the file yourself and publish with --url-base",
            transient=True,
        ) from None
    return f"hf://{repo}/{path.name}"


# ----------------------------------------------------------------------------- drift
def entry_drift(name: str, entry: WeightEntry, path: str | Path) -> list[str]:
    """Differences between a catalogue entry and what its weights file really is.

    Recomputes size, sha256, input size, params and GFLOPs (at the entry's
    input size) from ``path`` and the model rebuilt from its header. Returns
    one line per mismatch; an empty list means the entry is accurate.
    """
    from handzoo.builder import create_model
    from handzoo.weights import read_metadata
    from handzoo.zoo.hub import sha256_file

    path = Path(path)
    problems = []
    size = path.stat().st_size
    if size != entry.size:
        problems.append(f"{name}:{entry.tag}: size is {size} bytes, the catalogue says {entry.size}")
    sha = sha256_file(path)
    if sha != entry.sha256:
        problems.append(f"{name}:{entry.tag}: sha256 is {sha}, the catalogue says {entry.sha256}")
    if sha[:HASH_CHARS] not in path.name:
        problems.append(f"{name}:{entry.tag}: file name {path.name} does not carry the hash prefix {sha[:8]}")
    meta = read_metadata(path)
    recorded_size = int(json.loads(meta.get("input_size", "[0]"))[-1])
    if recorded_size != entry.input_size:
        problems.append(
            f"{name}:{entry.tag}: input_size is {recorded_size} in the weights, "
            f"{entry.input_size} in the catalogue"
        )
    model = create_model(name, weights=path)
    params = count_params(model)
    if entry.params != params:
        problems.append(f"{name}:{entry.tag}: params is {params}, the catalogue says {entry.params}")
    gflops = measure_gflops(model, entry.input_size)
    if entry.gflops is None or abs(gflops - entry.gflops) > 1e-4 * max(gflops, 1e-9):
        problems.append(f"{name}:{entry.tag}: GFLOPs is {gflops:.6g}, the catalogue says {entry.gflops}")
    return problems
