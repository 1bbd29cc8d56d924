"""MediaPipe's landmark network in PyTorch against the TFLite runtime (XNNPACK), on the same cores.

Latency at batch 1 and throughput at batch 32, float32, for each way handzoo
can run the converted network: eager PyTorch (NCHW and channels-last),
TorchScript frozen for inference, ``torch.compile``, and ONNX Runtime; the
TFLite runtime (``ai_edge_litert``, XNNPACK, batch 1 only as the file is
written, so batch 32 is 32 calls) is the baseline in the same run. Figures are
ms per image (median of repeats, interleaved) and ratios = runtime time /
handzoo time (> 1: handzoo faster).

    python benchmarks/blaze_speed.py [--threads 2] [--variant full] [--repeats 30] [--json OUT]

Every candidate is checked against the eager module first (max abs difference
< 1e-5 of each output's scale) and left out otherwise. ``--photos DIR`` times
``predict --detect`` (blazepalm + mediapipe-hand-full) on synthetic 640x480
photos instead, alternating with MediaPipe's own hand solution when
``--mediapipe-python`` names a Python that has mediapipe 0.10.21.
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch


def _median_ms(fn: Callable[[], object], repeats: int, per: int) -> float:
    times = []
    fn()
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append((time.perf_counter() - start) * 1000.0 / per)
    return statistics.median(times)


def _runtime(path: Path, threads: int):
    from ai_edge_litert.interpreter import Interpreter

    interpreter = Interpreter(model_path=str(path), num_threads=threads)
    interpreter.allocate_tensors()
    index = interpreter.get_input_details()[0]["index"]
    outputs = [d["index"] for d in interpreter.get_output_details()]

    def run(nhwc: np.ndarray) -> None:
        for image in nhwc:
            interpreter.set_tensor(index, image[None])
            interpreter.invoke()
            for o in outputs:
                interpreter.get_tensor(o)

    return run


def _setup(name: str, setup_s: dict[str, float], build: Callable[[], Callable]) -> Callable | None:
    """``build()`` timed into ``setup_s[name]``; a missing toolchain is reported, not fatal."""
    start = time.perf_counter()
    try:
        fn = build()
    except Exception as exc:
        print(f"{name} unavailable: {type(exc).__name__}: {exc}")
        return None
    setup_s[name] = time.perf_counter() - start
    return fn


def _compiled(module: torch.nn.Module, example: torch.Tensor) -> Callable:
    import torch._inductor.config as inductor

    inductor.freezing = True  # weights as constants: prepacked oneDNN convolutions with fused epilogues
    compiled = torch.compile(module.to(memory_format=torch.channels_last), dynamic=False)
    with torch.no_grad():
        compiled(example.contiguous(memory_format=torch.channels_last))  # compiles (per batch size)
    return lambda x: compiled(x.contiguous(memory_format=torch.channels_last))


def _onnxruntime(module: torch.nn.Module, example: torch.Tensor, threads: int) -> Callable:
    import onnxruntime as ort

    onnx_path = Path(tempfile.mkdtemp()) / "blazehand.onnx"
    torch.onnx.export(
        module,
        (example,),
        str(onnx_path),
        input_names=["images"],
        dynamic_axes={"images": {0: "batch"}},
        dynamo=False,
    )
    options = ort.SessionOptions()
    # ENABLE_ALL includes the NCHWc layout transformer (MLAS blocked convolutions) and conv+activation fusion.
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    session = ort.InferenceSession(str(onnx_path), options, providers=["CPUExecutionProvider"])
    return lambda x: session.run(None, {"images": x.numpy()})


def candidates(
    path: Path, variant: str, batch: int, threads: int, compile: bool = True
) -> tuple[dict[str, Callable[[torch.Tensor], object]], dict[str, float]]:
    """Every handzoo way of running the network (callables on NCHW float tensors), and setup seconds."""
    import warnings

    from handzoo_blaze.blazehand import BlazeHand
    from handzoo_blaze.convert import load_tflite
    from handzoo_blaze.inference import fast_landmarks, fold_same_padding, frozen_channels_last

    warnings.filterwarnings("ignore", category=UserWarning)
    warnings.filterwarnings("ignore", category=DeprecationWarning)
    warnings.filterwarnings("ignore", category=torch.jit.TracerWarning)

    def fresh() -> torch.nn.Module:
        return load_tflite(BlazeHand(variant), path).eval()

    module = fresh()
    example = torch.rand(batch, 3, 224, 224)
    setup: dict[str, float] = {}
    builders: dict[str, Callable[[], Callable]] = {
        "eager": lambda: module,
        "eager channels-last": lambda: (
            lambda m: lambda x: m(x.contiguous(memory_format=torch.channels_last))
        )(fresh().to(memory_format=torch.channels_last)),
        "folded channels-last": lambda: (
            lambda m: lambda x: m(x.contiguous(memory_format=torch.channels_last))
        )(fold_same_padding(fresh()).to(memory_format=torch.channels_last)),
        "torchscript frozen": lambda: torch.jit.optimize_for_inference(
            torch.jit.freeze(torch.jit.trace(fresh(), example).eval())
        ),
        "torchscript frozen CL": lambda: (
            lambda m: lambda x: m(x.contiguous(memory_format=torch.channels_last))
        )(frozen_channels_last(fresh(), example)),
        "handzoo default": lambda: fast_landmarks(fresh()),
        "default, torch only": lambda: fast_landmarks(fresh(), backend="torchscript"),
        "onnxruntime": lambda: _onnxruntime(fresh(), example, threads),
        "onnxruntime folded": lambda: _onnxruntime(fold_same_padding(fresh()), example, threads),
    }
    if compile:
        builders["torch.compile folded CL"] = lambda: _compiled(fold_same_padding(fresh()), example)
    out: dict[str, Callable[[torch.Tensor], object]] = {}
    with torch.no_grad():
        reference = [t.numpy() for t in module(example)]
        for name, build in builders.items():
            fn = _setup(name, setup, build)
            if fn is None:
                continue
            got = fn(example)
            got = [np.asarray(t) for t in got]
            error = max(
                float(np.abs(r - g).max() / np.abs(r).max()) for r, g in zip(reference, got, strict=True)
            )
            if not error < 1e-5:
                print(f"{name}: left out, outputs differ from eager by {error:.2e} of their scale")
                continue
            out[name] = fn
    return out, setup


def _photos(folder: Path, count: int) -> list[Path]:
    """``count`` 640x480 JPEG photos, each with a rendered right hand pasted at a random place (made once)."""
    from PIL import Image

    from handzoo.data.synthetic.generator import sample_hand

    folder.mkdir(parents=True, exist_ok=True)
    files = sorted(folder.glob("*.jpg"))
    if len(files) >= count:
        return files[:count]
    rng = np.random.default_rng(0)
    for i in range(count):
        size = int(rng.integers(160, 260))
        hand = sample_hand(np.random.default_rng([1, i]), size)["image"]
        photo = np.full((480, 640, 3), rng.integers(60, 200), np.uint8)
        y, x = int(rng.integers(0, 480 - size)), int(rng.integers(0, 640 - size))
        photo[y : y + size, x : x + size] = hand
        Image.fromarray(photo).save(folder / f"photo{i:03d}.jpg", quality=92)
    return sorted(folder.glob("*.jpg"))[:count]


def photos_per_second(folder: Path, count: int, mediapipe_python: str | None, rounds: int) -> None:
    """``handzoo predict --detect`` (blazepalm + mediapipe-hand-full) against MediaPipe's hand solution.

    Both get the same decoded photos; rounds alternate handzoo (as shipped, and with the model's
    fast runner) and MediaPipe (a subprocess in its own venv), photos/s is the median of the rounds.
    """
    import subprocess

    from handzoo_blaze.inference import landmark_runner
    from PIL import Image

    import handzoo

    files = _photos(folder, count)
    images = [np.asarray(Image.open(f).convert("RGB")) for f in files]
    rates: dict[str, list[float]] = {}
    found: dict[str, int] = {}
    start = time.perf_counter()
    plain = handzoo.Predictor("mediapipe-hand-full", pretrained=True, device="cpu", detector="blazepalm")
    setup = {"handzoo (eager)": time.perf_counter() - start}
    start = time.perf_counter()
    fast = handzoo.Predictor("mediapipe-hand-full", pretrained=True, device="cpu", detector="blazepalm")
    fast._runner = landmark_runner(fast.model)
    setup["handzoo (fast runner)"] = time.perf_counter() - start
    for _ in range(rounds):
        for name, predictor in (("handzoo (eager)", plain), ("handzoo (fast runner)", fast)):
            predictor.predict_hands(images[:1])  # warm-up
            start = time.perf_counter()
            hands = predictor.predict_hands(images)
            rates.setdefault(name, []).append(len(images) / (time.perf_counter() - start))
            found[name] = sum(bool(h) for h in hands)
        if mediapipe_python:
            script = Path(__file__).with_name("mediapipe_solution_speed.py")
            done = subprocess.run(
                [mediapipe_python, script, folder], capture_output=True, text=True, check=True
            )
            row = json.loads(done.stdout.strip().splitlines()[-1])
            rates.setdefault("mediapipe solution", []).append(row["photos_per_s"])
            found["mediapipe solution"] = row["hands"]
    base = statistics.median(rates.get("mediapipe solution", [float("nan")]))
    print(f"\n{len(images)} photos 640x480, {torch.get_num_threads()} threads: photos/s (this / mediapipe)")
    for name, values in rates.items():
        rate = statistics.median(values)
        took = f"   setup {setup[name]:5.2f} s" if name in setup else ""
        print(
            f"  {name:24s} {rate:7.2f} /s {rate / base:5.2f}x  hands found {found[name]}/{len(images)}{took}"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=torch.get_num_threads())
    parser.add_argument("--variant", default="full", choices=["full", "lite"])
    parser.add_argument("--repeats", type=int, default=30)
    parser.add_argument("--rounds", type=int, default=5, help="interleaved rounds (median of their medians)")
    parser.add_argument("--tflite", type=Path, help="hand_landmark_VARIANT.tflite (default: `handzoo pull`)")
    parser.add_argument("--json", type=Path)
    parser.add_argument("--no-compile", action="store_true", help="leave out torch.compile (~20 s a batch)")
    parser.add_argument("--photos", type=Path, help="time predict --detect on photos made in this folder")
    parser.add_argument("--photo-count", type=int, default=40)
    parser.add_argument("--mediapipe-python", help="a Python with mediapipe==0.10.21 (its own venv)")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    if args.photos:
        photos_per_second(args.photos, args.photo_count, args.mediapipe_python, max(1, args.rounds // 2 + 1))
        return
    path = args.tflite
    if path is None:
        from handzoo_blaze.sources import landmark_tflite

        path = landmark_tflite(args.variant)
    results: dict[str, dict[str, float]] = {}
    for batch, repeats in ((1, args.repeats), (32, max(3, args.repeats // 10))):
        rng = np.random.default_rng(0)
        nhwc = rng.random((batch, 224, 224, 3), dtype=np.float32)
        nchw = torch.from_numpy(nhwc).permute(0, 3, 1, 2).contiguous()
        runners = {"tflite xnnpack": (lambda f=_runtime(path, args.threads), x=nhwc: f(x))}
        found, setup = candidates(path, args.variant, batch, args.threads, not args.no_compile)
        for name, fn in found.items():
            runners[name] = lambda fn=fn, x=nchw: fn(x)
        with torch.no_grad():
            for fn in runners.values():  # warm-up
                fn()
                fn()
            samples: dict[str, list[float]] = {name: [] for name in runners}
            for _ in range(args.rounds):  # interleaved rounds: a busy moment hits every candidate alike
                for name, fn in runners.items():
                    samples[name].append(_median_ms(fn, max(1, repeats // 3), batch))
        ms = {name: statistics.median(v) for name, v in samples.items()}
        base = ms["tflite xnnpack"]
        results[f"batch {batch}"] = ms
        results[f"setup s, batch {batch}"] = setup
        print(
            f"\nbatch {batch}, {args.threads} threads, {args.variant}: ms per image (ratio = tflite / this)"
        )
        for name, value in ms.items():
            took = f"   setup {setup[name]:6.2f} s" if name in setup else ""
            print(f"  {name:24s} {value:8.2f} ms   {base / value:5.2f}x{took}")
    if args.json:
        args.json.write_text(
            json.dumps({"threads": args.threads, "variant": args.variant, **results}, indent=1)
        )


if __name__ == "__main__":
    main()
