"""Where MediaPipe's networks come from: files inside the ``mediapipe==0.10.21`` wheel on PyPI.

The landmark networks are catalogue entries (``zoo.yaml`` beside this file),
converted once into handzoo safetensors by ``handzoo pull``. The palm
detector's files are fetched the same way (``pypi:`` URLs, verified by
sha256, cached under ``$HANDZOO_HOME/weights/pypi/``) but read directly:
the detector is not a handzoo model. Nothing here is redistributed by handzoo.
"""

from __future__ import annotations

from pathlib import Path

from handzoo.plugin_api import InnerFile

RELEASE = "mediapipe==0.10.21"
_BASE = f"pypi:{RELEASE}/mediapipe/modules"

PALM_FILES: dict[str, InnerFile] = {
    "full": InnerFile(
        f"{_BASE}/palm_detection/palm_detection_full.tflite",
        "1b14e9422c6ad006cde6581a46c8b90dd573c07ab7f3934b5589e7cea3f89a54",
        2339846,
    ),
    "lite": InnerFile(
        f"{_BASE}/palm_detection/palm_detection_lite.tflite",
        "e9a4aaddf90dda56a87235303cf00e4c2d3fb28725f68fd88772997dac905c18",
        1985440,
    ),
}


def palm_tflite(variant: str, source: str | Path | None = None) -> Path:
    """The verified ``palm_detection_{variant}.tflite`` (fetched with pip once, then cached).

    ``source``: a mediapipe 0.10.21 wheel or the file itself, instead of a download.
    """
    from handzoo.plugin_api import fetch_inner

    file = PALM_FILES[variant]
    return fetch_inner(file.url, file.sha256, file.size, source, pull_ref="blazepalm")


def landmark_tflite(variant: str, source: str | Path | None = None) -> Path:
    """The verified raw ``hand_landmark_{variant}.tflite`` (catalogue entry ``mediapipe-hand-{variant}``)."""
    from handzoo.plugin_api import fetch_inner, weight_entry

    entry = weight_entry(f"mediapipe-hand-{variant}")
    return fetch_inner(entry.url, entry.sha256, entry.size, source, pull_ref=f"mediapipe-hand-{variant}")
