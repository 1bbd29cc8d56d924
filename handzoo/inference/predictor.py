"""``Predictor``: images in, 3D and 2D hand joints out (the pipeline behind ``handzoo predict``)."""

from __future__ import annotations

import os
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from handzoo import joints
from handzoo._version import __version__
from handzoo.conventions import IMAGENET_MEAN, IMAGENET_STD
from handzoo.device import resolve_device
from handzoo.errors import HandzooError, UsageError
from handzoo.geometry import crop_resize_K, rotated_crop_K
from handzoo.inference.camera import (
    DEFAULT_FOV_DEG,
    DEFAULT_ROOT_DEPTH,
    default_K,
    intrinsics,
    place_hand,
    project_placed,
)
from handzoo.inference.detection import DEFAULT_MARGIN, build_detector, resolve_hand
from handzoo.inference.images import (
    Box,
    Crop,
    ImageInput,
    UnreadableImageError,
    as_sequence,
    load_crop,
)
from handzoo.model import forward_with_camera

TWO_D_NOTE = (
    "joints2d is an approximation: the model predicts root-relative joints, so the wrist was placed at "
    "root_depth_m on the ray through the crop centre and projected with K"
)


@dataclass
class Prediction:
    """One hand in one image.

    Attributes:
        joints3d: (21,3) float32 metres, root-relative (the wrist, joint 0, at
            the origin), camera axes (x right, y down, z forward), canonical
            order (``handzoo.joints.CANONICAL``).
        joints2d: (21,2) float64 pixels of the original (upright) image:
            ``project(joints3d + translation, K)``, an approximation (see
            :mod:`handzoo.inference.camera`).
        K: (3,3) float64 intrinsics used, pixels of the original image.
        box: (x0, y0, x1, y1) the square crop the model saw, original pixels
            (before it was turned by ``angle``).
        translation: (3,) metres where the wrist was placed for ``joints2d``.
        image_size: (width, height) of the original image in pixels.
        source: the image's file path, or ``None``.
        vertices: optional (778,3) float32 metres, root-relative like ``joints3d``.
        K_source: ``"given"`` or ``"default"`` (field of view across the crop).
        hand: ``"right"`` or ``"left"`` (a left hand was mirrored for the model and
            its prediction mirrored back: all fields are in the image's own frame).
        score: the detector's confidence (``None`` without a detector).
        angle: radians; the crop was ``box`` turned clockwise on screen about
            its centre by this angle (a rotated detection), 0 for an
            axis-aligned crop. The outputs are in the image's frame all the same.

    Fields are also readable as ``prediction["joints3d"]``.
    """

    joints3d: np.ndarray
    joints2d: np.ndarray
    K: np.ndarray
    box: Box
    translation: np.ndarray
    image_size: tuple[int, int]
    source: str | None = None
    vertices: np.ndarray | None = None
    K_source: str = "default"
    hand: str = "right"
    score: float | None = None
    angle: float = 0.0

    def __getitem__(self, key: str) -> Any:
        if key not in self.__dataclass_fields__:
            raise KeyError(key)
        return getattr(self, key)

    def keys(self) -> list[str]:
        return list(self.__dataclass_fields__)

    @property
    def camera_joints(self) -> np.ndarray:
        """(21,3) metres in the camera frame under the placement used for ``joints2d``."""
        return self.joints3d.astype(np.float64) + self.translation

    def to_json(self, model: str | None = None, weights: str | None = None) -> dict[str, Any]:
        """A JSON-ready dict: 3D in millimetres, 2D in pixels, K, names and provenance."""
        data: dict[str, Any] = {
            "image": self.source,
            "image_size": list(self.image_size),
            "model": model,
            "weights": weights,
            "handzoo_version": __version__,
            "joint_order": "canonical",
            "joint_names": list(joints.CANONICAL),
            "units": {
                "joints3d_mm": "millimetres, root-relative (wrist at the origin), camera axes "
                "x right, y down, z forward",
                "root_mm": "millimetres, camera frame: where the wrist was placed to compute joints2d",
                "joints2d": "pixels of the original image, pixel (0,0) covers [0,1)x[0,1)",
                "K": "pixels of the original image",
                "angle": "radians: the crop is box turned clockwise on screen (x right, y down) about "
                "its centre",
            },
            "joints3d_mm": np.round(self.joints3d.astype(np.float64) * 1000.0, 4).tolist(),
            "root_mm": np.round(self.translation * 1000.0, 4).tolist(),
            "root_depth_m": float(self.translation[2]),
            "joints2d": np.round(self.joints2d, 4).tolist(),
            "K": self.K.tolist(),
            "K_source": self.K_source,
            "box": [float(v) for v in self.box],
            "angle": float(self.angle),
            "hand": self.hand,
            "score": self.score,
            "note": TWO_D_NOTE,
        }
        if self.vertices is not None:
            data["vertices_mm"] = np.round(self.vertices.astype(np.float64) * 1000.0, 3).tolist()
        return data


def build_model(
    model_or_name: str | torch.nn.Module, weights: str | Path | None = None, pretrained: bool = False
) -> tuple[torch.nn.Module, str]:
    """(model, name) from a registered name (+ safetensors weights or zoo weights) or a module."""
    from handzoo.builder import create_model, load_weights

    if isinstance(model_or_name, torch.nn.Module):
        if pretrained:
            raise UsageError("pretrained=True needs a model name, not a module")
        model = model_or_name
        if weights is not None:
            load_weights(model, weights)
        return model, str(getattr(model, "handzoo_name", type(model).__name__))
    if not isinstance(model_or_name, str):
        raise UsageError(f"expected a model name or an nn.Module, got {type(model_or_name).__name__}")
    model = create_model(model_or_name, pretrained=pretrained, weights=weights)
    return model, str(getattr(model, "handzoo_name", model_or_name))


class Predictor:
    """A pipeline from images to hand joints, batched, on CUDA when available.

    ::

        predictor = handzoo.Predictor("resnet50", weights="runs/resnet50/model.safetensors")
        [hand] = predictor.predict("hand.jpg")
        hand.joints3d   # (21,3) metres, root-relative, canonical order
        hand.joints2d   # (21,2) pixels of hand.jpg (an approximation, see below)

    Each image is read (any size; RGBA, grayscale, 16-bit, palette), cut to a
    square (the largest centred square, a given box, or a detected hand's
    square, turned upright when the detection has an angle), resized to the
    model's input size S with antialiasing, normalised with the model's
    ``preprocessing`` mean/std and run through the model under
    ``torch.inference_mode``.

    2D joints: the model predicts joints relative to the wrist, so pixels need
    a camera ``K`` (given, or a :data:`DEFAULT_FOV_DEG`-degree field of view
    across the crop) and an assumed wrist depth (``root_depth`` metres): the
    hand is centred on the crop. See :mod:`handzoo.inference.camera`.

    Args:
        model_or_name: a registered model name (``handzoo list models``) or a
            model (``nn.Module`` images (B,3,S,S) -> ``HandOutput``, with a
            ``preprocessing`` dict).
        weights: a ``model.safetensors`` written by ``handzoo run``.
        device: ``None``/"auto" (CUDA when available), "cpu", "cuda", "cuda:1".
        pretrained: load the zoo's published weights for the name.
        batch_size: images per forward pass.
        fov_deg: horizontal field of view across the crop of the default K.
        root_depth: wrist depth (metres) used to place the hand for 2D.
        num_workers: threads decoding image files (default: up to 4, one per
            CPU core); 0 or 1 decodes in the calling thread.
        detector: a registered detector name (``handzoo list detectors``) or an
            object with ``detect(image)``; then :meth:`predict_hands` finds every
            hand of an image and predicts each one.
        hand: ``right``, ``left`` (mirror for the model, mirror the prediction
            back) or ``auto`` (the detector's handedness; right without one).
        max_hands: at most this many hands per image (the detector's best).
        margin: a detected hand's crop is its box made square and grown by this
            factor; ``None`` takes the detector's ``crop_margin`` (a detector
            whose boxes already frame the whole hand says 1.0), else
            :data:`~handzoo.inference.detection.DEFAULT_MARGIN`.
        decode: where JPEG files are decoded and cropped: ``cpu`` (Pillow),
            ``device`` (``torchvision.io.decode_jpeg`` on the model's device,
            :mod:`handzoo.inference.device_decode`; other files still use the
            CPU) or ``auto`` (device on CUDA, cpu elsewhere).

    Attributes:
        model, name, device, preprocessing (``mean``, ``std``, ``input_size``).
    """

    def __init__(
        self,
        model_or_name: str | torch.nn.Module,
        weights: str | Path | None = None,
        device: str | torch.device | None = None,
        *,
        pretrained: bool = False,
        batch_size: int = 32,
        fov_deg: float = DEFAULT_FOV_DEG,
        root_depth: float = DEFAULT_ROOT_DEPTH,
        num_workers: int | None = None,
        decode: str = "auto",
        detector: Any = None,
        hand: str = "auto",
        max_hands: int | None = None,
        margin: float | None = None,
    ) -> None:
        if batch_size < 1:
            raise UsageError(f"batch_size must be at least 1, got {batch_size}")
        if decode not in ("auto", "cpu", "device"):
            raise UsageError(f"decode must be 'auto', 'cpu' or 'device', got {decode!r}")
        model, self.name = build_model(model_or_name, weights, pretrained)
        self.weights = str(weights) if weights is not None else ("pretrained" if pretrained else None)
        self.device = resolve_device(device)
        self.model = model.to(self.device).eval()
        # A model may offer a faster CPU inference path with its forward's outputs: inference_runner().
        offer = getattr(self.model, "inference_runner", None) if self.device.type == "cpu" else None
        self._runner = offer() if callable(offer) else None
        prep = getattr(model, "preprocessing", None)
        if not prep or "input_size" not in prep:
            raise UsageError(f"model {self.name!r} has no preprocessing['input_size']; cannot size its input")
        self.preprocessing = dict(prep)
        self.size = int(prep["input_size"][-1])
        mean = torch.tensor(prep.get("mean", IMAGENET_MEAN), dtype=torch.float32)
        std = torch.tensor(prep.get("std", IMAGENET_STD), dtype=torch.float32)
        # (pixel/255 - mean)/std as one multiply-add per element, done in torch on the device.
        self._scale = (1.0 / (255.0 * std)).view(1, 3, 1, 1).to(self.device)
        self._shift = (-mean / std).view(1, 3, 1, 1).to(self.device)
        self.fill = tuple(round(255 * m) for m in mean.tolist())  # zero after normalisation
        self.batch_size = batch_size
        self.num_workers = min(4, os.cpu_count() or 1) if num_workers is None else int(num_workers)
        self._pool: ThreadPoolExecutor | None = None
        self._reader: ThreadPoolExecutor | None = None
        self.fov_deg = fov_deg
        self.root_depth = root_depth
        self.decode = ("device" if self.device.type == "cuda" else "cpu") if decode == "auto" else decode
        resolve_hand(hand, None)  # validates it
        if max_hands is not None and max_hands < 1:
            raise UsageError(f"max_hands must be at least 1, got {max_hands}")
        self.detector, self.detector_name = build_detector(detector) if detector is not None else (None, None)
        if margin is None:
            margin = getattr(self.detector, "crop_margin", DEFAULT_MARGIN)
        if not float(margin) >= 1.0:
            raise UsageError(f"margin must be at least 1 (the box itself), got {margin}")
        self.hand, self.max_hands, self.margin = hand, max_hands, float(margin)

    def close(self) -> None:
        """Stop the decoding threads (a later call starts them again)."""
        for pool in (self._reader, self._pool):
            if pool is not None:
                pool.shutdown()
        self._pool = self._reader = None

    def __enter__(self) -> Predictor:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"Predictor({self.name!r}, weights={self.weights!r}, device='{self.device}', size={self.size})"

    # -- preprocessing -------------------------------------------------------------------
    def load(
        self, images: Sequence[ImageInput], boxes: Sequence[Box | None] | None = None, crop: str = "center"
    ) -> list[Crop]:
        """Read and crop images to (S,S,3) uint8 (see :func:`handzoo.inference.images.load_crop`)."""
        items = as_sequence(images)
        per_image = _per_image(_single_box(boxes), len(items), "boxes")
        crops = self._load_range(items, per_image, crop, 0, len(items))
        for c in crops:
            if isinstance(c, UnreadableImageError):
                raise c
        return crops  # type: ignore[return-value]

    def _load_range(
        self, items: list[ImageInput], boxes: list[Any], crop: str, start: int, stop: int
    ) -> list[Crop | UnreadableImageError]:
        """Crops of ``items[start:stop]``, or the error of each unreadable one, in order.

        Files are decoded by a small thread pool (Pillow releases the GIL while
        decoding and resizing); PIL images and arrays are read in this thread.
        """

        def one(i: int) -> Crop | UnreadableImageError:
            try:
                return load_crop(items[i], self.size, box=boxes[i], crop=crop, fill=self.fill, index=i)
            except UnreadableImageError as exc:
                return exc

        files = [i for i in range(start, stop) if isinstance(items[i], (str, Path))]
        decoded: dict[int, Crop | UnreadableImageError] = {}
        if self.decode == "device" and files:
            decoded = self._decode_on_device(items, boxes, crop, files)
            files = [i for i in files if i not in decoded]
        if self.num_workers > 1 and len(files) > 1:
            decoded.update(zip(files, self._map(one, files), strict=True))
        return [decoded[i] if i in decoded else one(i) for i in range(start, stop)]

    def _map(self, fn, indices: list[int]) -> list[Any]:
        if self.num_workers <= 1:
            return [fn(i) for i in indices]
        if self._pool is None:
            self._pool = ThreadPoolExecutor(self.num_workers, thread_name_prefix="handzoo-decode")
        return list(self._pool.map(fn, indices))

    def _decode_on_device(
        self, items: list[ImageInput], boxes: list[Any], crop: str, files: list[int]
    ) -> dict[int, Crop | UnreadableImageError]:
        """Crops of the JPEG files among ``files`` decoded on the device; the others are left out."""
        from handzoo.inference.device_decode import decode_crops, probe_jpeg

        probed = dict(zip(files, self._map(lambda i: probe_jpeg(items[i]), files), strict=True))
        ready = [i for i in files if probed[i] is not None]
        if not ready:
            return {}
        try:
            cut = decode_crops(
                [probed[i] for i in ready], [boxes[i] for i in ready], self.size, crop, self.fill, self.device
            )
        except RuntimeError:  # a file the device decoder rejects: the CPU path names the problem
            return {}
        return {
            i: Crop(pixels=pixels, box=box, image_size=probed[i].size, source=probed[i].source)
            for i, (pixels, box) in zip(ready, cut, strict=True)
        }

    def normalise(self, pixels: np.ndarray | torch.Tensor | Sequence[Any]) -> torch.Tensor:
        """(B,S,S,3) uint8, or B crops' pixels on the host or the device -> (B,3,S,S) float32
        on the device, normalised with mean/std."""
        if isinstance(pixels, (list, tuple)):
            on_host = [p for p in pixels if not torch.is_tensor(p)]
            if len(on_host) == len(pixels):
                pixels = np.stack(on_host)
            else:
                pixels = torch.stack(
                    [
                        (p if torch.is_tensor(p) else torch.from_numpy(np.array(p))).to(self.device)
                        for p in pixels
                    ]
                )
        u8 = torch.as_tensor(pixels)
        if self.device.type == "cuda" and u8.device.type == "cpu":
            u8 = u8.pin_memory().to(self.device, non_blocking=True)
        # Contiguous NCHW (not a permuted view) so the model runs exactly as on a plain batch.
        x = u8.permute(0, 3, 1, 2).contiguous().to(torch.float32)
        return x.mul_(self._scale).add_(self._shift)

    def preprocess(
        self, images: Sequence[ImageInput], boxes: Sequence[Box | None] | None = None, crop: str = "center"
    ) -> tuple[torch.Tensor, list[Crop]]:
        """Images -> (the (B,3,S,S) normalised model input on the device, the crops)."""
        crops = self.load(images, boxes, crop)
        return self.normalise([c.pixels for c in crops]), crops

    # -- prediction ----------------------------------------------------------------------
    def predict(
        self,
        images: ImageInput | Sequence[ImageInput],
        boxes: Box | Sequence[Box | None] | None = None,
        K: Any = None,
        crop: str = "center",
    ) -> list[Prediction]:
        """Predict one hand per image.

        Args:
            images: one or a sequence of file paths (.jpg/.png), PIL images or
                uint8 arrays (H,W,3) of any size.
            boxes: ``None`` (use ``crop``), one (x0, y0, x1, y1) box in pixels for
                all images, or one box (or None) per image; boxes are made square
                around their centre.
            K: ``None`` (default camera per image), one (3,3) matrix or
                (fx, fy, cx, cy) in pixels of the original image for all images,
                or one per image.
            crop: ``center`` (largest centred square) or ``full`` (whole image,
                padded to a square).

        Returns:
            One :class:`Prediction` per image, in order: ``joints3d`` (21,3)
            metres root-relative canonical order, ``joints2d`` (21,2) pixels of
            the original image, ``K`` (3,3), ``box``.

        Raises:
            UnreadableImageError: an image cannot be read (use :meth:`iter_predict`
                to skip bad images instead).
        """
        results: list[Prediction] = []
        for _index, item in self.iter_predict(images, boxes=boxes, K=K, crop=crop, skip_errors=False):
            assert isinstance(item, Prediction)
            results.append(item)
        return results

    def iter_predict(
        self,
        images: ImageInput | Sequence[ImageInput],
        boxes: Box | Sequence[Box | None] | None = None,
        K: Any = None,
        crop: str = "center",
        skip_errors: bool = True,
    ) -> Iterator[tuple[int, Prediction | UnreadableImageError]]:
        """Like :meth:`predict`, batch by batch: yields ``(index, Prediction)``, or
        ``(index, UnreadableImageError)`` for an image that cannot be read when
        ``skip_errors`` (the other images of its batch are still predicted)."""
        items = as_sequence(images)
        n = len(items)
        per_box = _per_image(_single_box(boxes), n, "boxes")
        per_K = _per_image_K(K, n)
        starts = list(range(0, n, self.batch_size))
        if not starts:
            return

        def load(start: int) -> list[Crop | UnreadableImageError]:
            return self._load_range(items, per_box, crop, start, min(start + self.batch_size, n))

        # The next batch is read while the model runs on this one.
        if self._reader is None:
            self._reader = ThreadPoolExecutor(1, thread_name_prefix="handzoo-read")
        upcoming = self._reader.submit(load, starts[0])
        hand = resolve_hand(self.hand, None)  # without a detector: the asked hand, right for auto
        for k, start in enumerate(starts):
            batch = upcoming.result()
            if k + 1 < len(starts):
                upcoming = self._reader.submit(load, starts[k + 1])
            crops: list[Crop] = []
            indices: list[int] = []
            for i, loaded in enumerate(batch, start=start):
                if isinstance(loaded, UnreadableImageError):
                    if not skip_errors:
                        raise loaded
                    yield i, loaded
                    continue
                crops.append(loaded)
                indices.append(i)
            if not crops:
                continue
            predicted = self._predict_crops(crops, [per_K[i] for i in indices], [hand] * len(crops))
            for i, pred in zip(indices, predicted, strict=True):
                yield i, pred

    def predict_hands(
        self, images: ImageInput | Sequence[ImageInput], K: Any = None
    ) -> list[list[Prediction]]:
        """Every hand the detector finds in each image, best first: one list per image.

        Raises:
            UsageError: the Predictor has no detector.
            UnreadableImageError: an image cannot be read (see :meth:`iter_predict_hands`).
        """
        return [hands for _i, hands in self.iter_predict_hands(images, K=K, skip_errors=False)]  # type: ignore[misc]

    def iter_predict_hands(
        self, images: ImageInput | Sequence[ImageInput], K: Any = None, skip_errors: bool = True
    ) -> Iterator[tuple[int, list[Prediction] | UnreadableImageError]]:
        """Like :meth:`predict_hands`, image by image: ``(index, [Prediction, ...])`` (an empty list
        when no hand is found), or ``(index, UnreadableImageError)`` when ``skip_errors``."""
        from handzoo.inference.detection import check_detections, hand_box
        from handzoo.inference.images import load_upright

        if self.detector is None:
            raise UsageError("this Predictor has no detector; pass detector=NAME (`handzoo list detectors`)")
        items = as_sequence(images)
        per_K = _per_image_K(K, len(items))
        for i, item in enumerate(items):
            name = str(item) if isinstance(item, (str, Path)) else None
            try:
                upright = load_upright(item, i)
                pixels = np.asarray(upright)
            except UnreadableImageError as exc:
                if not skip_errors:
                    raise
                yield i, exc
                continue
            found = check_detections(self.detector.detect(pixels), self.detector_name)
            found = found[: self.max_hands] if self.max_hands is not None else found
            crops = []
            for det in found:
                crop = load_crop(
                    upright,
                    self.size,
                    box=hand_box(det.box, self.margin),
                    fill=self.fill,
                    index=i,
                    angle=det.angle,
                )
                crop.source = name
                crops.append(crop)
            hands = [resolve_hand(self.hand, det) for det in found]
            predicted = self._predict_crops(crops, [per_K[i]] * len(crops), hands) if crops else []
            for pred, det in zip(predicted, found, strict=True):
                pred.score = det.score
            yield i, predicted

    def _predict_crops(
        self, crops: list[Crop], Ks: list[np.ndarray | None], hands: list[str]
    ) -> list[Prediction]:
        """Predictions for crops of right hands, or of left ones (``hands``), in the images' frames.

        A left hand is mirrored (u -> S - u) so that the model sees a right
        hand, with the mirrored crop's camera ``F·K·diag(-1,1,1)``; its
        joints, vertices and root come back with x negated and its 2D joints
        with u -> S - u, exactly undoing the mirror.

        A turned crop (``crop.angle != 0``, a rotated detection) is the picture
        of the image's camera turned about its optical axis
        (:func:`handzoo.geometry.rotated_crop_K`): with ``A`` (3,3) the pixel
        map image -> crop, ``A·K = K_crop·Rz``, ``K_crop`` (3,3) upper-triangular
        and ``Rz`` (3,3) a rotation about z (``rotation_z(-angle)`` for square
        pixels). The model gets ``K_crop`` and predicts in the crop's camera
        frame; its root-relative joints3d (21,3) and vertices (778,3) metres
        and its root (3,) come back as ``Rzᵀ·X`` (rows: ``x @ Rz``), its 2D
        joints (21,2) pixels as ``A⁻¹·q``. A left hand is mirrored inside the
        upright crop, so the mirror is undone first, then the turn.
        """
        left = np.array([h == "left" for h in hands])
        turned = np.array([c.angle != 0.0 for c in crops])
        x = self.normalise([c.pixels for c in crops])
        if left.any():
            flip = torch.as_tensor(left, device=self.device)
            x = torch.where(flip[:, None, None, None], x.flip(-1), x)
        boxes = np.array([c.box for c in crops], dtype=np.float64)
        K = np.stack(
            [k if k is not None else default_K(c.box, self.fov_deg) for k, c in zip(Ks, crops, strict=True)]
        )
        # The crop's own camera: image-space heads lift their 2D joints to 3D with it.
        K_crop = np.stack([crop_resize_K(k, tuple(b), self.size) for k, b in zip(K, boxes, strict=True)])
        # A turned crop: its camera, the rotation Rz from the image's camera frame and the pixel map A.
        Rz, A = np.tile(np.eye(3), (len(crops), 1, 1)), np.tile(np.eye(3), (len(crops), 1, 1))
        for b in np.flatnonzero(turned):
            K_crop[b], Rz[b], A[b] = rotated_crop_K(K[b], tuple(boxes[b]), crops[b].angle, self.size)
        mirror_px = np.array([[-1.0, 0.0, self.size], [0.0, 1.0, 0.0], [0.0, 0.0, 1.0]])
        K_crop[left] = mirror_px @ K_crop[left] @ np.diag([-1.0, 1.0, 1.0])
        with torch.inference_mode():
            K_in = torch.as_tensor(K_crop, dtype=torch.float32, device=self.device)
            out = self._runner(x, K=K_in) if self._runner else forward_with_camera(self.model, x, K_in)
        sign = np.where(left, -1.0, 1.0)[:, None]  # x of a left hand's prediction, mirrored back
        joints3d = out.joints3d.float().cpu().numpy()
        joints3d[..., 0] *= sign
        vertices = out.vertices.float().cpu().numpy() if getattr(out, "vertices", None) is not None else None
        if vertices is not None:
            vertices[..., 0] *= sign
        for b in np.flatnonzero(turned):  # from the turned crop's camera frame to the image's
            joints3d[b] = (joints3d[b].astype(np.float64) @ Rz[b]).astype(joints3d.dtype)
            if vertices is not None:
                vertices[b] = (vertices[b].astype(np.float64) @ Rz[b]).astype(vertices.dtype)
        root = (out.extras or {}).get("root")
        if out.joints2d is not None and root is not None:
            # The head's own 2D joints and the wrist it placed, back in the original image's pixels.
            scale = (boxes[:, 2] - boxes[:, 0]) / self.size
            crop_uv = out.joints2d.float().cpu().numpy().astype(np.float64)
            crop_uv[left, :, 0] = self.size - crop_uv[left, :, 0]
            uv = crop_uv * scale[:, None, None]
            uv += boxes[:, None, :2]
            t = root.float().cpu().numpy().astype(np.float64)
            t[:, 0] *= sign[:, 0]
            for b in np.flatnonzero(turned):
                back = np.linalg.inv(A[b])
                uv[b] = crop_uv[b] @ back[:2, :2].T + back[:2, 2]
                t[b] = t[b] @ Rz[b]
        else:
            # joints3d are in the images' frames already: the wrist goes on the ray through the
            # crop's centre, which turning the crop about it does not move.
            t = place_hand(joints3d, K, boxes, self.root_depth)
            uv = project_placed(joints3d, t, K)
        for b in range(len(crops)):
            parts = (joints3d[b], uv[b], t[b]) + (() if vertices is None else (vertices[b],))
            if not all(np.isfinite(p).all() for p in parts):
                where = crops[b].source or f"image {b} of the batch"
                raise NonFinitePredictionError(
                    f"{where}: the model predicted NaN or infinite joints; its weights are damaged or "
                    "it diverged: use other weights"
                )
        return [
            Prediction(
                joints3d=joints3d[b],
                joints2d=uv[b],
                K=K[b],
                box=crops[b].box,
                translation=t[b],
                image_size=crops[b].image_size,
                source=crops[b].source,
                vertices=None if vertices is None else vertices[b],
                K_source="default" if Ks[b] is None else "given",
                hand=hands[b],
                angle=crops[b].angle,
            )
            for b in range(len(crops))
        ]


class NonFinitePredictionError(HandzooError):
    """A model returned NaN or infinite values for an image (named in the message)."""


def _single_box(boxes: Any) -> Any:
    """A single box (4 numbers) applies to every image."""
    if boxes is None:
        return None
    arr = np.asarray(boxes, dtype=object)
    if arr.shape == (4,) and all(isinstance(v, (int, float, np.number)) for v in arr):
        return [tuple(float(v) for v in arr)]
    return boxes


def _single_K(K: Any) -> Any:
    """One (3,3) matrix or 4 numbers apply to every image."""
    if K is None:
        return None
    if isinstance(K, (np.ndarray, torch.Tensor)) and tuple(K.shape) in ((3, 3), (4,)):
        return [np.asarray(K)]
    if isinstance(K, (list, tuple)) and (
        (len(K) == 4 and all(isinstance(v, (int, float, np.number)) for v in K))
        or (len(K) == 3 and all(isinstance(r, (list, tuple)) and len(r) == 3 for r in K))
    ):
        return [K]
    return K


def _per_image_K(K: Any, n: int) -> list[np.ndarray | None]:
    """One checked (3,3) intrinsics or None per image, from one K or a sequence of n."""
    per_K = _per_image(_single_K(K), n, "K")
    return [None if k is None else intrinsics(k, f"K[{i}]") for i, k in enumerate(per_K)]


def _per_image(values: Any, n: int, what: str) -> list[Any]:
    """None -> [None]*n; a one-element list -> repeated; else exactly n values."""
    if values is None:
        return [None] * n
    values = list(values)
    if len(values) == 1:
        return values * n
    if len(values) != n:
        raise UsageError(f"{what}: got {len(values)} values for {n} images; pass one, or one per image")
    return values
