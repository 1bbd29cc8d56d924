"""MediaPipe's own hand solution on a folder of photos: photos per second (its runtime, its venv).

Run with a Python that has ``mediapipe==0.10.21`` (it pins numpy<2, so not handzoo's venv);
``benchmarks/blaze_speed.py --photos DIR --mediapipe-python PY`` alternates it with handzoo's
``predict --detect`` path on the same files.

    python benchmarks/mediapipe_solution_speed.py DIR

Prints one JSON line: photos, seconds, photos_per_s, hands (photos where a hand was found).
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
from PIL import Image


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("photos", type=Path)
    args = parser.parse_args()
    import mediapipe as mp

    files = sorted(args.photos.glob("*.jpg"))
    images = [np.asarray(Image.open(f).convert("RGB")) for f in files]  # decoding is left out, as below
    with mp.solutions.hands.Hands(static_image_mode=True, max_num_hands=1, model_complexity=1) as hands:
        hands.process(images[0])  # warm-up
        start = time.perf_counter()
        found = sum(hands.process(image).multi_hand_landmarks is not None for image in images)
        seconds = time.perf_counter() - start
    print(
        json.dumps(
            {"photos": len(images), "seconds": seconds, "photos_per_s": len(images) / seconds, "hands": found}
        )
    )


if __name__ == "__main__":
    main()
