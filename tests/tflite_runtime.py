"""The TFLite runtime (``ai_edge_litert``) as the tests' reference for the converted MediaPipe networks."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest


def open_runtime(path: Path):
    """An allocated interpreter of the ``.tflite`` file (one thread); skips the test without the runtime."""
    litert = pytest.importorskip("ai_edge_litert.interpreter", reason="the TFLite runtime (ai-edge-litert)")
    interpreter = litert.Interpreter(model_path=str(path), num_threads=1)
    interpreter.allocate_tensors()
    return interpreter


def run_runtime(interpreter, nhwc: np.ndarray) -> dict[str, np.ndarray]:
    """(N,H,W,3) float32 images through the runtime one by one (the files take batch 1): outputs by name."""
    outs: dict[str, list[np.ndarray]] = {}
    for image in nhwc:
        interpreter.set_tensor(interpreter.get_input_details()[0]["index"], image[None])
        interpreter.invoke()
        for d in interpreter.get_output_details():
            outs.setdefault(d["name"], []).append(interpreter.get_tensor(d["index"]).copy())
    return {k: np.concatenate(v) for k, v in outs.items()}
