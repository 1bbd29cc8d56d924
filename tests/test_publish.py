"""``handzoo publish`` and the pretrained round trip: run -> publish -> real HTTP -> pull -> same predictions.

Runs are tiny (resnet18 at 32 px, a few steps) on a small dataset plugin
registered in-process through the plugin host, the way a third-party plugin
object is registered (and removed afterwards). Also the catalogue drift
check: params, GFLOPs, size and hash of every published entry are recomputed
from the weights and the model, like torchvision's weights metadata test.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import torch
from torch import nn

import handzoo
from handzoo.errors import UsageError
from handzoo.plugins import get_host, get_registry
from handzoo.publish import entry_drift, publish_run
from handzoo.zoo.catalogue import load_zoo, parse_zoo
from handzoo.zoo.hub import fetch
from tests.conftest import export_random_weights
from tests.http_server import serve_folder

ROOT = Path(__file__).resolve().parents[1]
DATASET = "hubhands"
IMAGE = 32


# ----------------------------------------------------------------------------- a tiny dataset plugin
class HubHands(torch.utils.data.Dataset):
    """Deterministic random images and joints (metres): sample i is the same in every call."""

    def __init__(self, split: str = "train", image_size: int = IMAGE, n: int = 24, **ignored) -> None:
        self.split, self.image_size, self.n = split, image_size, n
        gen = torch.Generator().manual_seed(0 if split == "train" else 1)
        self.joints3d = torch.randn(n, 21, 3, generator=gen) * 0.05

    def __len__(self) -> int:
        return self.n

    def __getitem__(self, i: int) -> dict:
        gen = torch.Generator().manual_seed(1000 * (self.split != "train") + i)
        image = torch.randn(3, self.image_size, self.image_size, generator=gen)
        return {"image": image, "joints3d": self.joints3d[i], "index": i}


class HubHandsPlugin:
    @handzoo.hookimpl
    def register_datasets(self, register):
        register(DATASET, HubHands, description="random images and joints for zoo tests")


@contextlib.contextmanager
def toy_dataset() -> Iterator[None]:
    """Register the ``hubhands`` dataset in the current plugin host for the block."""
    if DATASET in get_registry().names("dataset"):
        yield
        return
    get_host().add(HubHandsPlugin(), name="test-hubhands")
    try:
        yield
    finally:
        get_host().remove("test-hubhands")


def cli(*args: str) -> tuple[int, str, str]:
    """Run the handzoo CLI in this process: (exit code, stdout, stderr)."""
    import io
    from contextlib import redirect_stderr, redirect_stdout

    from handzoo.cli import main

    out, err = io.StringIO(), io.StringIO()
    with redirect_stdout(out), redirect_stderr(err), pytest.raises(SystemExit) as done:
        main(list(args))
    return done.value.code, out.getvalue(), err.getvalue()


_RUNS: dict[tuple[int, float], Path] = {}


def trained_run(tmp_path_factory: pytest.TempPathFactory, steps: int, lr: float) -> Path:
    """A finished ``handzoo run resnet18`` folder (cached for the whole session)."""
    key = (steps, lr)
    if key not in _RUNS:
        out = tmp_path_factory.mktemp("run") / "run"
        args = ["run", "resnet18", "--data", DATASET, "--image-size", str(IMAGE), "--batch-size", "4"]
        args += ["--workers", "0", "--device", "cpu", "--max-steps", str(steps), "--lr", str(lr)]
        args += ["--set", "data.augment=[]", "--set", "run.amp=false", "--out", str(out)]
        with toy_dataset():
            code, _, err = cli(*args)
        assert code == 0, err[-2000:]
        _RUNS[key] = out
    return _RUNS[key]


@pytest.fixture(autouse=True)
def _dataset() -> Iterator[None]:
    with toy_dataset():
        yield


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory) -> Path:
    return trained_run(tmp_path_factory, steps=3, lr=1e-3)


@pytest.fixture
def zoo_copy(tmp_path) -> Path:
    path = tmp_path / "zoo.yaml"
    path.write_text((ROOT / "zoo.yaml").read_text())
    return path


def val_predictions(model: nn.Module) -> torch.Tensor:
    ds = HubHands("val")
    with torch.no_grad():
        return model.eval()(torch.stack([ds[i]["image"] for i in range(len(ds))])).joints3d


# ----------------------------------------------------------------------------- independent references
def reference_gflops(model: nn.Module, image_size: int) -> float:
    """2 x multiply-accumulates of every convolution and linear layer, counted by hooks."""
    macs = []

    def conv(mod: nn.Conv2d, inputs, output) -> None:
        kh, kw = mod.kernel_size
        macs.append(output.numel() * (mod.in_channels // mod.groups) * kh * kw)

    def linear(mod: nn.Linear, inputs, output) -> None:
        macs.append(output.numel() * mod.in_features)

    hooks = [
        m.register_forward_hook(conv if isinstance(m, nn.Conv2d) else linear)
        for m in model.modules()
        if isinstance(m, nn.Conv2d | nn.Linear)
    ]
    with torch.no_grad():
        model.eval()(torch.zeros(1, 3, image_size, image_size))
    for h in hooks:
        h.remove()
    return 2 * sum(macs) / 1e9


def parameter_count(path: Path) -> int:
    """Elements of the tensors in a weights file that are parameters (batch-norm statistics aside)."""
    from safetensors.torch import load_file

    buffers = ("running_mean", "running_var", "num_batches_tracked")
    return sum(t.numel() for k, t in load_file(str(path)).items() if not k.endswith(buffers))


# ----------------------------------------------------------------------------- publish
def test_publish_writes_a_hash_named_file_and_a_checked_entry(run_dir, zoo_copy, tmp_path):
    from safetensors.torch import load_file

    from handzoo.weights import read_metadata

    before = zoo_copy.read_text()
    done = publish_run(run_dir, zoo_file=zoo_copy, dest=tmp_path / "pub", url_base="https://x.org/w/")
    data = done.path.read_bytes()
    sha = hashlib.sha256(data).hexdigest()
    assert done.path.name == f"resnet18-{sha[:8]}.safetensors"
    # the same tensors as the run, its header plus the publication's fields
    run_tensors, tensors = load_file(str(run_dir / "model.safetensors")), load_file(str(done.path))
    assert run_tensors.keys() == tensors.keys()
    assert all(torch.equal(run_tensors[k], tensors[k]) for k in tensors)
    meta, run_meta = read_metadata(done.path), read_metadata(run_dir / "model.safetensors")
    for key in ("model", "config", "joint_order", "units", "input_size", "mean", "std", "metrics"):
        assert meta[key] == run_meta[key], key
    assert meta["handzoo_version"] == handzoo.__version__ and meta["tag"] == DATASET
    assert json.loads(meta["joint_order"])[0] == "wrist" and json.loads(meta["input_size"]) == [3, 32, 32]

    e = done.entry
    assert (e.tag, e.sha256, e.size, e.input_size) == (DATASET, sha, len(data), IMAGE)
    assert e.url == f"https://x.org/w/{done.path.name}"
    assert e.params == parameter_count(done.path)
    model = handzoo.create_model("resnet18", image_size=IMAGE)
    assert e.gflops == pytest.approx(reference_gflops(model, IMAGE), rel=1e-5)
    metrics = json.loads((run_dir / "metrics.json").read_text())
    val = e.metrics[DATASET]["val"]
    for key in ("pa_mpjpe_mm", "mpjpe_mm", "auc_pa_0_50mm", "baseline_pa_mpjpe_mm"):
        assert val[key] == pytest.approx(metrics[key], rel=1e-5)
    assert e.training_data == f"{DATASET} (train split)" and e.licence == "MIT" and "3 steps" in e.notes

    # The catalogue: only resnet18's weights were added; every comment line survived.
    after = zoo_copy.read_text()
    assert done.comments_kept
    assert [ln for ln in before.splitlines() if ln.strip().startswith("#")] == [
        ln for ln in after.splitlines() if ln.strip().startswith("#")
    ]
    old, new = parse_zoo(before).model_dump(), parse_zoo(after).model_dump()
    assert new["architectures"]["resnet18"].pop("weights") == [e.model_dump()]
    old["architectures"]["resnet18"].pop("weights")
    assert new == old


HANDWRITTEN_ZOO = """# a catalogue written by hand
version: 1
architectures:
  # the small one
  resnet18:
    backbone: resnet18   # informative
    weights:
      - {tag: old, url: "https://x.org/resnet18-00000000.safetensors", sha256: "%s", size: 1}
    # about the head
    head: direct
  resnet34:
    head: direct
# the end
"""


def test_zoo_update_rewrites_only_the_weights_block_and_keeps_comments(tmp_path):
    import yaml

    from handzoo.publish import add_weight_entry
    from handzoo.zoo.schema import WeightEntry

    path = tmp_path / "zoo.yaml"
    path.write_text(HANDWRITTEN_ZOO % ("0" * 64))
    new = WeightEntry(tag="new", url="https://x.org/resnet18-11111111.safetensors", sha256="1" * 64, size=2)
    assert add_weight_entry(path, "resnet18", new)
    assert add_weight_entry(path, "timm/convnext_tiny", new)  # an architecture not yet listed
    text = path.read_text()
    comments = [ln.split("#", 1)[1] for ln in HANDWRITTEN_ZOO.splitlines() if "#" in ln]
    assert [ln.split("#", 1)[1] for ln in text.splitlines() if "#" in ln] == comments
    data = yaml.safe_load(text)
    r18 = data["architectures"]["resnet18"]
    assert [w["tag"] for w in r18["weights"]] == ["old", "new"] and r18["head"] == "direct"
    assert data["architectures"]["timm/convnext_tiny"]["weights"][0]["sha256"] == "1" * 64
    assert list(data["architectures"]) == ["resnet18", "resnet34", "timm/convnext_tiny"]
    # A layout the targeted update does not handle is re-dumped whole, still valid.
    path.write_text("version: 1\narchitectures: {resnet18: {head: direct}}  # flow style\n")
    assert not add_weight_entry(path, "resnet18", new)
    assert load_zoo(str(path)).architectures["resnet18"].weight().tag == "new"


def test_publishing_again_updates_the_entry_in_place(run_dir, zoo_copy, tmp_path):
    first = publish_run(run_dir, zoo_file=zoo_copy, dest=tmp_path / "pub")
    again = publish_run(run_dir, zoo_file=zoo_copy, dest=tmp_path / "pub", licence="CC-BY-4.0")
    assert again.path != first.path  # the licence is in the header, so the bytes changed
    weights = load_zoo(str(zoo_copy)).architectures["resnet18"].weights
    assert [(w.tag, w.licence) for w in weights] == [(DATASET, "CC-BY-4.0")]  # same tag: replaced
    assert weights[0].url == again.path.resolve().as_uri()  # file:// when no --url-base
    # The header is written with sorted keys: the same content gives the same bytes and name.
    assert publish_run(run_dir, zoo_file=zoo_copy, dest=tmp_path / "pub2").path.name == first.path.name
    with pytest.raises(UsageError, match="can only be published as 'resnet18'"):
        publish_run(run_dir, "resnet34", zoo_file=zoo_copy, dest=tmp_path / "pub")


def test_publish_cli_and_its_upload_error_path(run_dir, zoo_copy, tmp_path, monkeypatch):
    before = zoo_copy.read_text()
    monkeypatch.setitem(sys.modules, "huggingface_hub", None)  # as if not installed
    code, _, err = cli("publish", str(run_dir), "--zoo", str(zoo_copy), "--dest", str(tmp_path / "p"),
                       "--to", "hf://handzoo-test/repo")
    assert code == 2 and err.count("\n") == 1 and "pip install huggingface_hub" in err
    assert zoo_copy.read_text() == before  # a failed upload adds no entry
    code, out, err = cli("publish", str(run_dir), "--name", "resnet18", "--zoo", str(zoo_copy), "--dest",
                         str(tmp_path / "p"), "--tag", "cli", "--notes", "from the CLI")
    assert code == 0, err
    entry = load_zoo(str(zoo_copy)).architectures["resnet18"].weight("cli")
    assert entry.notes == "from the CLI" and f"sha256 {entry.sha256}" in out


def test_published_weights_pulled_over_http_predict_exactly_like_the_run(run_dir, zoo_copy, tmp_path,
                                                                          monkeypatch):

    served = tmp_path / "served"
    with serve_folder(served) as server:
        code, _, err = cli("publish", str(run_dir), "--zoo", str(zoo_copy), "--dest", str(served),
                           "--url-base", server.url)
        assert code == 0, err
        monkeypatch.setenv("HANDZOO_ZOO", str(zoo_copy))
        monkeypatch.setenv("HANDZOO_HOME", str(tmp_path / "another-home"))
        code, out, err = cli("pull", f"resnet18:{DATASET}", "--quiet")
        assert code == 0, err
        pulled = Path(out.strip())
        assert pulled.parent == tmp_path / "another-home" / "weights"
        assert [r[2] for r in server.requests] == [200]
        model = handzoo.create_model(f"resnet18:{DATASET}", pretrained=True)
        assert len(server.requests) == 1  # verified from the cache, no second download
    # The server is gone: the default weights of resnet18 still load from the verified cache.
    offline = handzoo.create_model("resnet18", pretrained=True)
    reference = handzoo.create_model(weights=run_dir / "model.safetensors")
    expected = val_predictions(reference)
    assert torch.equal(val_predictions(model), expected)
    assert torch.equal(val_predictions(offline), expected)
    assert model.handzoo_weights == f"resnet18:{DATASET}" and model.preprocessing["input_size"] == (3, 32, 32)
    with pytest.raises(UsageError, match="no published handzoo weights for 'resnet34' yet"):
        handzoo.create_model("resnet34", pretrained=True)


# ----------------------------------------------------------------------------- catalogue drift
def catalogue_drift(zoo_file: Path) -> list[str]:
    """Recompute size, sha256, params and GFLOPs of every weight entry in ``zoo_file`` (that file alone)."""
    zoo = load_zoo(str(zoo_file), plugins=False)
    problems = []
    for name, arch in zoo.architectures.items():
        for entry in arch.weights:
            try:
                path = fetch(entry.url, entry.sha256, size=entry.size, retries=0, progress=False)
            except Exception as exc:  # an unreachable or altered file is drift too
                problems.append(f"{name}:{entry.tag}: {exc}")
                continue
            problems += entry_drift(name, entry, path)
    return problems


def test_catalogue_drift_is_detected(run_dir, zoo_copy, tmp_path):
    import yaml

    publish_run(run_dir, zoo_file=zoo_copy, dest=tmp_path / "pub")
    assert catalogue_drift(zoo_copy) == []
    raw = yaml.safe_load(zoo_copy.read_text())
    entry = raw["architectures"]["resnet18"]["weights"][0]
    entry["params"] += 1
    entry["gflops"] *= 1.5
    entry["size"] += 1
    zoo_copy.write_text(yaml.safe_dump(raw))
    problems = catalogue_drift(zoo_copy)
    assert len(problems) == 3, problems
    assert "size is" in problems[0] and "params is 11" in problems[1] and "GFLOPs is" in problems[2]


def _shipped_entries() -> list:
    """Every handzoo weight entry shipped, the first-party plugins' included; files inside a package
    on PyPI (MediaPipe's, converted on pull) are checked by tests/test_blaze.py instead."""
    zoo = load_zoo(str(ROOT / "zoo.yaml"))
    return [
        pytest.param(n, e, id=f"{n}:{e.tag}")
        for n, a in zoo.architectures.items()
        for e in a.weights
        if not e.url.startswith("pypi:")
    ]


@pytest.mark.parametrize(("name", "entry"), _shipped_entries())
def test_shipped_catalogue_entries_match_their_weights(name, entry):
    from handzoo.zoo.hub import DownloadError

    try:
        path = fetch(entry.url, entry.sha256, size=entry.size, retries=1, progress=False)
    except DownloadError as exc:
        if exc.transient:
            pytest.skip(f"{name}:{entry.tag} cannot be downloaded here: {exc}")
        raise
    assert entry_drift(name, entry, path) == []


def test_a_run_on_a_handzoo_synth_folder_is_published_as_synthetic(tmp_path, zoo_copy):
    """It was labelled `resnet18:freihand`, "training_data: freihand", because --data freihand read it."""
    import json as _json

    from handzoo.data.synthetic import generate_freihand
    from handzoo.publish import describe_training_data

    synth = generate_freihand(tmp_path / "synth", num=4, seed=7, num_eval=0, workers=1, progress=False)
    run = tmp_path / "run"
    run.mkdir()
    weights = export_random_weights(run, "resnet18", image_size=32)
    # the header of a `handzoo run --data freihand --data-root <synth folder>`
    from safetensors.torch import load_file, save_file

    from handzoo.weights import read_metadata

    meta = read_metadata(weights)
    config = _json.loads(meta["config"])
    config["data"].update(name="freihand", root=str(synth))
    save_file(load_file(str(weights)), str(weights), metadata={**meta, "config": _json.dumps(config)})
    done = publish_run(run, zoo_file=zoo_copy, dest=tmp_path / "pub")
    assert done.entry.tag == "synthetic"
    assert done.entry.training_data.startswith("synthetic hands from `handzoo synth` (generator")
    assert "seed 7, 4 images) read as freihand" in done.entry.training_data
    assert describe_training_data({"name": "freihand", "root": str(tmp_path)}) == (
        "freihand",
        "freihand (train split)",
    )


def test_publish_changes_the_shipped_catalogue_only_when_zoo_names_it(run_dir, zoo_copy, tmp_path,
                                                                      monkeypatch):
    from handzoo.zoo.catalogue import _PACKAGED

    shipped = _PACKAGED.read_bytes()
    monkeypatch.delenv("HANDZOO_ZOO", raising=False)
    code, _, err = cli("publish", str(run_dir), "--dest", str(tmp_path / "p"))
    assert code == 2 and err.count("\n") == 1 and "--zoo FILE" in err and "cp " in err
    assert _PACKAGED.read_bytes() == shipped and not (tmp_path / "p").exists()
    monkeypatch.setenv("HANDZOO_ZOO", str(zoo_copy))  # a catalogue of one's own, in use: that one changes
    code, out, err = cli("publish", str(run_dir), "--dest", str(tmp_path / "p"), "--tag", "mine")
    assert code == 0, err
    assert f"changed {zoo_copy.resolve()}" in out.replace("\n", "")
    assert load_zoo(str(zoo_copy)).architectures["resnet18"].weight("mine") is not None
    assert _PACKAGED.read_bytes() == shipped
