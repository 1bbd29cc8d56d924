"""MediaPipe's landmark network in PyTorch against the TFLite runtime (XNNPACK), on the same cores.

Latency at batch 1 and throughput at batch 32, float32, for each way handzoo
can run the converted network: eager PyTorch (NCHW and channels-last),
TorchScript frozen for inference, ``torch.compile``, and ONNX Runtime; the
TFLite runtime (``ai_edge_litert``, XNNPACK, batch 1 only as the file is
written, so batch 32 is 32 calls) is the baseline in the same run. Figures are
ms per image (median of repeats, interleaved) and ratios = runtime time /
handzoo time (> 1: handzoo faster).

    python benchmarks/blaze_speed.py [--threads 2] [--variant full] [--repeats 30] [--json OUT]
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


def candidates(path: Path, variant: str, batch: int) -> dict[str, Callable[[torch.Tensor], object]]:
    """Every handzoo way of running the network, each a callable on an NCHW float tensor."""
    from handzoo_blaze.blazehand import BlazeHand
    from handzoo_blaze.convert import load_tflite
    from handzoo_blaze.inference import fast_landmarks

    module = load_tflite(BlazeHand(variant), path).eval()
    out: dict[str, Callable[[torch.Tensor], object]] = {}
    out["eager"] = module
    cl = load_tflite(BlazeHand(variant), path).eval().to(memory_format=torch.channels_last)
    out["eager channels-last"] = lambda x: cl(x.contiguous(memory_format=torch.channels_last))
    out["handzoo default"] = fast_landmarks(load_tflite(BlazeHand(variant), path).eval())
    example = torch.rand(batch, 3, 224, 224)
    with torch.no_grad():
        frozen = torch.jit.optimize_for_inference(torch.jit.freeze(torch.jit.trace(module, example).eval()))
    out["torchscript frozen"] = frozen
    try:
        compiled = torch.compile(load_tflite(BlazeHand(variant), path).eval())
        with torch.no_grad():
            compiled(example)
        out["torch.compile"] = compiled
    except Exception as exc:  # no compiler toolchain: reported, not fatal
        print(f"torch.compile unavailable: {type(exc).__name__}: {exc}")
    try:
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
        session = ort.InferenceSession(str(onnx_path), providers=["CPUExecutionProvider"])
        out["onnxruntime"] = lambda x: session.run(None, {"images": x.numpy()})
    except Exception as exc:
        print(f"onnxruntime unavailable: {type(exc).__name__}: {exc}")
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=torch.get_num_threads())
    parser.add_argument("--variant", default="full", choices=["full", "lite"])
    parser.add_argument("--repeats", type=int, default=30)
    parser.add_argument("--tflite", type=Path, help="hand_landmark_VARIANT.tflite (default: `handzoo pull`)")
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
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
        for name, fn in candidates(path, args.variant, batch).items():
            runners[name] = lambda fn=fn, x=nchw: fn(x)
        with torch.no_grad():
            for fn in runners.values():  # warm-up
                fn()
                fn()
            samples: dict[str, list[float]] = {name: [] for name in runners}
            for _ in range(3):  # interleaved rounds: a busy moment hits every candidate alike
                for name, fn in runners.items():
                    samples[name].append(_median_ms(fn, max(1, repeats // 3), batch))
        ms = {name: statistics.median(v) for name, v in samples.items()}
        base = ms["tflite xnnpack"]
        results[f"batch {batch}"] = ms
        print(
            f"\nbatch {batch}, {args.threads} threads, {args.variant}: ms per image (ratio = tflite / this)"
        )
        for name, value in ms.items():
            print(f"  {name:22s} {value:8.2f} ms   {base / value:5.2f}x")
    if args.json:
        args.json.write_text(
            json.dumps({"threads": args.threads, "variant": args.variant, **results}, indent=1)
        )


if __name__ == "__main__":
    main()
