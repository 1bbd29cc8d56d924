"""The README and docs/ as a user follows them: every example command runs, and the CLI reference
lists every option.

The fenced ``bash`` blocks of README.md and the pages of docs/ are run line by line with bash in a
folder that holds what they refer to, at tiny sizes: two 2-step runs
(``runs/resnet18``, ``runs/resnet101``), a FreiHAND-layout folder ``R``,
``photos/``, the shipped ``zoo.yaml``, and a 24-image stand-in for the
embedded synthetic set at its default place in ``$HANDZOO_HOME``. Only the
publishing URL is replaced, by a real HTTP server on 127.0.0.1 that serves
the published files. Installing (the set-up blocks, the example plugin) and
multi-process ``torchrun`` lines are run by CI and tests of their own.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from tests.freihand_fixture import write_freihand_fixture
from tests.http_server import serve_folder

ROOT = Path(__file__).resolve().parents[1]
DOCS = {path.name: path.read_text() for path in sorted((ROOT / "docs").glob("*.md"))}
# The README first, then its pages in the order it links them (commands of one page may use an
# earlier page's outputs, as a reader following the links would have them).
README = (ROOT / "README.md").read_text()
ORDER = [line.split("](docs/", 1)[1].split(")", 1)[0] for line in README.splitlines() if "](docs/" in line]
TEXT = README + "".join(DOCS[name] for name in dict.fromkeys(ORDER) if name in DOCS)
# Lines run elsewhere: installing (CI itself, test_example_plugin) and multi-process runs (test_runner).
ELSEWHERE = ("python3 -m venv", "pip install", "torchrun ")
TINY_RUN = ["--max-steps", "2", "--image-size", "32", "--batch-size", "4", "--workers", "0"]
TINY_RUN += ["--device", "cpu"]


def bash_commands(text: str) -> list[str]:
    """The commands of the fenced bash blocks, continuation lines joined.

    Lines run elsewhere are left out, and so is the rest of a block that
    starts by installing something (its later lines need what it installed).
    """
    commands = []
    for block in re.findall(r"```bash\n(.*?)```", text, flags=re.S):
        lines = [c.strip() for c in block.replace("\\\n", " ").splitlines()]
        lines = [c for c in lines if c and not c.startswith("#")]
        if lines and "pip install" in lines[0]:
            continue
        commands += [c for c in lines if not c.startswith(ELSEWHERE)]
    return commands


def _tiny_default_synthetic_set(home: Path) -> None:
    """24 + 4 generated hands where the embedded default set lives (it is 11,000 images)."""
    from handzoo.data.synthetic.generator import generate_freihand, synthetic_root

    generate_freihand(synthetic_root(home=home), num=24, num_eval=4, seed=0, progress=False)


@pytest.fixture(scope="module")
def workdir(tmp_path_factory) -> tuple[Path, dict[str, str]]:
    work = tmp_path_factory.mktemp("readme")
    home = work / ".handzoo"
    env = {
        **os.environ,
        "HANDZOO_HOME": str(home),
        "PATH": os.pathsep.join([str(Path(sys.executable).parent), os.environ.get("PATH", "")]),
        "OMP_NUM_THREADS": "1",
    }
    env.pop("HANDZOO_ZOO", None)
    _tiny_default_synthetic_set(home)
    write_freihand_fixture(work / "R", num_unique=8, num_versions=1, size=64, num_eval=4, seed=1)
    (work / "photos").mkdir()
    rng = np.random.default_rng(0)
    for i in range(2):
        Image.fromarray(rng.integers(0, 256, (48, 64, 3), dtype=np.uint8)).save(work / "photos" / f"{i}.jpg")
    (work / "photo.jpg").write_bytes((work / "photos" / "0.jpg").read_bytes())  # `handzoo predict photo.jpg`
    (work / "zoo.yaml").write_text((ROOT / "zoo.yaml").read_text())
    for model in ("resnet18", "resnet101"):  # the main job, shortened
        done = subprocess.run(
            [sys.executable, "-m", "handzoo", "run", model, *TINY_RUN, "--out", f"runs/{model}"],
            cwd=work,
            env=env,
            capture_output=True,
            text=True,
            timeout=600,
        )
        assert done.returncode == 0, done.stderr[-3000:]
    return work, env


def test_every_readme_command_runs_as_written(workdir):
    work, env = workdir
    assert sorted(set(ORDER)) == sorted(DOCS), "every page of docs/ is linked from the README"
    commands = bash_commands(TEXT)
    assert len(commands) >= 12, commands  # the blocks were found
    with serve_folder(work / "runs" / "resnet101" / "publish") as server:
        for command in commands:
            line = command.replace("https://example.org/handzoo", server.url)
            done = subprocess.run(
                ["bash", "-c", line], cwd=work, env=env, capture_output=True, text=True, timeout=600
            )
            assert done.returncode == 0, f"README command failed: {command}\n{done.stderr[-3000:]}"
    # what the commands say they write
    for path in ("pred.zip", "board.html", "resnet101.onnx", "my-zoo.yaml", "predictions/0.json"):
        assert (work / path).is_file(), path
    assert list((work / "runs" / "resnet101" / "publish").glob("resnet101-*.safetensors"))
    assert (ROOT / "zoo.yaml").read_text() == (work / "zoo.yaml").read_text()  # the shipped one untouched


def test_the_cli_reference_names_every_option_of_every_command():
    """docs/cli.md's table (with the shared-options note and, for run, docs/runner.md) vs the CLI."""
    from handzoo.cli import COMMAND_MODULES, build_command

    assert COMMAND_MODULES  # core commands only: plugins document their own
    table = DOCS["cli.md"]
    shared = table[table.index("Options that several") : table.index("Every command accepts")]
    runner = DOCS["runner.md"]
    run_section = runner[runner.index("Options: `--data NAME`") : runner.index("Losses:")]
    missing = {}
    for name, command in build_command().commands.items():
        if command.callback is not None and not command.callback.__module__.startswith("handzoo.commands"):
            continue
        rows = " ".join(line for line in table.splitlines() if line.startswith(f"| `handzoo {name}"))
        assert rows, f"the CLI table has no row for `handzoo {name}`"
        text = rows + shared + (run_section if name == "run" else "")
        for param in command.params:
            flags = [o for o in (*param.opts, *param.secondary_opts) if o.startswith("--")]
            if flags and not any(flag in text for flag in flags):
                missing.setdefault(name, []).append(flags[0])
    assert not missing, f"options missing from docs/cli.md: {missing}"
