"""Fuzzed parsers: every input loads correctly or raises handzoo's own one-line error.

Targets: the FreiHAND annotation reader, the zoo.yaml catalogue, the
safetensors metadata handzoo reads back, and ``--set`` overrides. Hypothesis
runs a fixed, derandomised budget per target (``EXAMPLES``), so CI is
deterministic and fast; benchmarks/README.md records the counts.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest

hypothesis = pytest.importorskip("hypothesis")
from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

from handzoo.errors import HandzooError  # noqa: E402

EXAMPLES = 150
FUZZ = settings(
    max_examples=EXAMPLES,
    derandomize=True,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)

# JSON-like values with the odd ones a stranger's file may hold: NaN, infinities, huge numbers.
numbers = st.one_of(
    st.floats(allow_nan=True, allow_infinity=True, width=64),
    st.integers(min_value=-(10**30), max_value=10**30),
    st.sampled_from([0.0, 1e308, -1e308, 1e-320, 0.5]),
)
json_values = st.recursive(
    st.one_of(st.none(), st.booleans(), numbers, st.text(max_size=8)),
    lambda inner: st.one_of(
        st.lists(inner, max_size=6), st.dictionaries(st.text(max_size=5), inner, max_size=4)
    ),
    max_leaves=40,
)


def _one_line(exc: BaseException) -> None:
    assert isinstance(exc, HandzooError), f"{type(exc).__name__}: {exc}"
    assert "\n" not in str(exc).strip(), str(exc)


def _plausible(key: str) -> st.SearchStrategy:
    """Lists of entries near the right shape: right, wrong sizes, wrong nesting."""
    shapes = {"xyz": (21, 3), "K": (3, 3), "scale": ()}
    shape = shapes[key]

    def entry(values):
        arr = np.resize(np.asarray(values, dtype=object), int(np.prod(shape)) or 1)
        return arr.reshape(shape).tolist() if shape else arr.tolist()[0]

    return st.lists(st.one_of(st.lists(numbers, min_size=1, max_size=70).map(entry), json_values), max_size=5)


@pytest.mark.parametrize("key", ["xyz", "K", "scale"])
def test_fuzzed_annotation_files_load_or_fail_cleanly(key, tmp_path_factory):
    from handzoo.data.annotations import SPECS, parse_annotation

    folder = tmp_path_factory.mktemp(f"ann_{key}")
    path = folder / f"training_{key}.json"

    @FUZZ
    @given(rows=st.one_of(_plausible(key), json_values, st.text(max_size=40)))
    def check(rows):
        text = rows if isinstance(rows, str) else json.dumps(rows, allow_nan=True)
        path.write_text(text)
        try:
            arr = parse_annotation(path, key)
        except Exception as exc:  # the point: which exceptions come out
            _one_line(exc)
            assert path.name in str(exc)  # the error names the file
            return
        assert arr.shape[1:] == SPECS[key].shape and np.isfinite(arr).all()

    check()


def test_fuzzed_catalogues_load_or_fail_cleanly(tmp_path_factory):
    import yaml

    from handzoo.zoo.catalogue import load_zoo

    folder = tmp_path_factory.mktemp("zoo")
    urls = st.one_of(
        st.sampled_from(
            [
                "https://example.org/w/resnet18-0123abcd.safetensors",
                "file:///etc/passwd",
                "ftp://example.org/x.safetensors",
                "https://example.org/../../x.safetensors",
                "https://example.org/w/model.pth",
                "hf://org/repo/../x.safetensors",
                "javascript:alert(1)",
                "",
            ]
        ),
        st.text(max_size=30),
    )
    entry = st.fixed_dictionaries(
        {},
        optional={
            "tag": st.one_of(st.text(max_size=10), st.sampled_from(["synthetic", "../x", "a/b"])),
            "url": urls,
            "sha256": st.one_of(st.text(max_size=64), st.just("0" * 64)),
            "size": st.one_of(st.integers(-5, 10**12), st.text(max_size=3)),
            "metrics": json_values,
        },
    )
    arch = st.fixed_dictionaries(
        {},
        optional={
            "weights": st.lists(entry, max_size=2),
            "recipe": json_values,
            "references": json_values,
            "options": json_values,
        },
    )
    catalogue = st.one_of(
        st.fixed_dictionaries(
            {
                "version": st.one_of(st.just(1), json_values),
                "architectures": st.dictionaries(st.text(max_size=8), arch, max_size=2),
            }
        ),
        json_values,
    )
    counter = iter(range(10**9))

    @FUZZ
    @given(data=catalogue)
    def check(data):
        path = folder / f"zoo{next(counter)}.yaml"  # a new file each time: no cache hit
        path.write_text(yaml.safe_dump(data, allow_unicode=True) if not isinstance(data, str) else data)
        try:
            zoo = load_zoo(str(path), plugins=False)
        except Exception as exc:
            _one_line(exc)
            return
        for arch in zoo.architectures.values():  # what loads is safe to use
            for weights in arch.weights:
                name = weights.url.rsplit("/", 1)[-1]
                assert name.endswith(".safetensors") and ".." not in weights.url.split("://", 1)[-1].split(
                    "/"
                )

    check()


def test_fuzzed_weights_metadata_loads_or_fails_cleanly(tmp_path_factory):
    import torch
    from safetensors.torch import save_file

    import handzoo

    folder = tmp_path_factory.mktemp("meta")
    tensors = {"w": torch.zeros(1)}
    keys = [
        "model",
        "config",
        "input_size",
        "mean",
        "std",
        "build",
        "joint_order",
        "units",
        "handzoo_version",
    ]
    values = st.one_of(
        st.text(max_size=20),
        json_values.map(json.dumps),
        st.sampled_from(["resnet18", "nosuchmodel", "[3, 32, 32]", '{"model": {"name": 5}}', "null", "NaN"]),
    )
    counter = iter(range(10**9))

    @FUZZ
    @given(meta=st.dictionaries(st.sampled_from(keys), values, max_size=len(keys)))
    def check(meta):
        path = folder / f"w{next(counter)}.safetensors"
        save_file(tensors, str(path), metadata=meta)
        try:
            handzoo.create_model(weights=path)
        except Exception as exc:
            _one_line(exc)

    check()


def test_fuzzed_set_overrides_apply_or_fail_cleanly():
    from handzoo.config import RunConfig, parse_override

    keys = st.one_of(
        st.sampled_from(
            [
                "optim.lr",
                "data.batch_size",
                "data.augment",
                "run.seed",
                "model.options.head",
                "data.pipeline",
                "optim.lr_scaling",
                "run",
                "x.y",
                "data.augment_cfg.rotate.p",
            ]
        ),
        st.text(max_size=15),
    )
    values = st.one_of(
        st.text(max_size=15),
        st.sampled_from(["[a, b", "{x: 1}", "1e309", "-1", "nan", "!!python/object:os.system ls"]),
    )

    @FUZZ
    @given(key=keys, value=values)
    def check(key, value):
        try:
            path, parsed = parse_override(f"{key}={value}")
            RunConfig().with_overrides({".".join(path): parsed})
        except Exception as exc:
            _one_line(exc)

    check()


def test_yaml_errors_of_catalogues_and_configs_are_one_line(tmp_path):
    """Found by the catalogue fuzzer in CI: yaml's messages span lines, and so did ours."""
    from handzoo.config import RunConfig
    from handzoo.zoo.catalogue import load_zoo

    for text in ("\x1f", "a: [1, 2", "key: {unclosed"):
        for path, load in (
            (tmp_path / "zoo.yaml", lambda p: load_zoo(str(p), plugins=False)),
            (tmp_path / "config.yaml", RunConfig.from_yaml),
        ):
            path.write_text(text)
            with pytest.raises(HandzooError) as info:
                load(path)
            _one_line(info.value)
            assert str(path) in str(info.value)


def test_the_fuzz_budget_is_recorded():
    readme = (Path(__file__).resolve().parents[1] / "benchmarks" / "README.md").read_text()
    assert f"{EXAMPLES} examples" in readme and "test_fuzz.py" in readme
    assert math.isfinite(EXAMPLES)
