"""Rotated detections: the crop turned upright, its camera, and the prediction turned back.

A detection's ``angle`` turns its crop clockwise on screen so that the hand
stands upright; the turned crop is an upright camera turned about its optical
axis (``A·K = K_crop·Rz``), so the model gets ``K_crop`` and its prediction
comes back into the photo's frame. The fake model here reads two planted
markers (red wrist, green middle fingertip) in the crop it is given and lays
21 joints along them, consistent in 2D and 3D with the crop's camera: it sees
the hand's pixels only through the crop, so the tests check the pixels, the
camera and the way back together.
"""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch
from PIL import Image
from torch import nn

import handzoo
from handzoo.errors import UsageError
from handzoo.geometry import crop_resize_K, project, rotated_crop_affine, rotated_crop_K, rotation_z
from handzoo.inference.detection import DEFAULT_MARGIN, Detection
from handzoo.inference.draw import crop_corners, prediction_figure
from handzoo.inference.images import load_crop
from handzoo.inference.predictor import Predictor
from handzoo.output import HandOutput

S = 32  # the fake model's input side
TIP = 12  # the middle fingertip, canonical order
# Where the fake model puts each joint: along the wrist -> tip vector (t) and across it (o), and depth.
ALONG = np.linspace(0.0, 1.0, 21)
ALONG[TIP] = 1.0
ACROSS = np.sin(np.arange(21) * 1.3) * 0.3
ACROSS[[0, TIP]] = 0.0
DEPTH = 0.5 + 0.01 * np.cos(np.arange(21) * 0.7)


class MarkerModel(nn.Module):
    """Reads the red (wrist) and green (fingertip) markers of its crop; joints consistent with its K.

    ``joints2d`` (B,21,2) crop pixels, ``extras["root"]`` (B,3) and ``joints3d``
    (B,21,3) root-relative metres with ``project(joints3d + root, K) ==
    joints2d``; ``seen`` keeps the (wrist, tip) crop pixels of every call.
    """

    def __init__(self, size: int = S) -> None:
        super().__init__()
        self.preprocessing = {"mean": (0.0, 0.0, 0.0), "std": (1.0, 1.0, 1.0), "input_size": (3, size, size)}
        self.seen: list[np.ndarray] = []

    def forward(self, images: torch.Tensor, K: torch.Tensor | None = None) -> HandOutput:
        x = images.double()
        size = x.shape[-1]
        centres = torch.arange(size, dtype=torch.float64) + 0.5
        v, u = torch.meshgrid(centres, centres, indexing="ij")

        def centroid(weight: torch.Tensor) -> torch.Tensor:
            # A crop without the marker has a centroid at the corner, not 0/0: predictions are finite.
            total = weight.sum(dim=(1, 2)).clamp(min=1e-12)
            return (
                torch.stack([(weight * u).sum(dim=(1, 2)), (weight * v).sum(dim=(1, 2))], 1) / total[:, None]
            )

        wrist = centroid((x[:, 0] - x[:, 1] - 0.12).clamp(min=0))
        tip = centroid((x[:, 1] - x[:, 0] - 0.12).clamp(min=0))
        self.seen.append(torch.stack([wrist, tip], 1).numpy())
        d = tip - wrist
        across = torch.stack([-d[:, 1], d[:, 0]], 1)
        uv = (
            wrist[:, None]
            + torch.as_tensor(ALONG)[None, :, None] * d[:, None]
            + torch.as_tensor(ACROSS)[None, :, None] * across[:, None]
        )
        rays = torch.cat([uv, torch.ones_like(uv[..., :1])], -1) @ torch.linalg.inv(K.double()).transpose(
            1, 2
        )
        camera = rays / rays[..., 2:] * torch.as_tensor(DEPTH)[None, :, None]
        root = camera[:, 0]
        return HandOutput(
            joints3d=(camera - root[:, None]).float(), joints2d=uv.float(), extras={"root": root}
        )


class Fixed:
    """A detector object that returns the detections it was given."""

    name = "fixed"

    def __init__(self, *found: Detection, crop_margin: float | None = None) -> None:
        self.found = list(found)
        if crop_margin is not None:
            self.crop_margin = crop_margin

    def detect(self, image):
        return self.found


def _blob(image: np.ndarray, centre, channel: int, sigma: float = 1.6) -> None:
    h, w = image.shape[:2]
    yy, xx = np.mgrid[0:h, 0:w] + 0.5
    bump = np.exp(-((xx - centre[0]) ** 2 + (yy - centre[1]) ** 2) / (2 * sigma**2))
    image[..., channel] += 200.0 * bump


def _scene(w: int, h: int, wrist, tip, seed: int = 0) -> np.ndarray:
    """A grey, gently textured (h,w,3) uint8 photo with a red blob at ``wrist`` and a green one at ``tip``."""
    rng = np.random.default_rng(seed)
    grey = np.asarray(
        Image.fromarray(rng.integers(20, 70, (h // 8, w // 8), dtype=np.uint8)).resize(
            (w, h), Image.Resampling.BICUBIC
        ),
        dtype=np.float64,
    )
    image = np.repeat(grey[..., None], 3, axis=2)
    _blob(image, wrist, 0)
    _blob(image, tip, 1)
    return np.clip(np.round(image), 0, 255).astype(np.uint8)


def _rot90_point(xy: np.ndarray, w: int, h: int, k: int) -> np.ndarray:
    """Where a continuous pixel point of a (h,w) image lands in ``np.rot90(image, k)``."""
    xy = np.array(xy, dtype=np.float64)
    for _ in range(k % 4):  # one turn counter-clockwise on screen: (x, y) -> (y, w - x)
        xy = np.stack([xy[..., 1], w - xy[..., 0]], -1)
        w, h = h, w
    return xy


def _rot90_box(box, w: int, h: int, k: int) -> tuple[float, ...]:
    corners = _rot90_point(np.array([[box[0], box[1]], [box[2], box[3]]]), w, h, k)
    return (*corners.min(0), *corners.max(0))


def _predict(model: nn.Module, photo: np.ndarray, *found: Detection, K=None, **options) -> list:
    predictor = Predictor(model, device="cpu", detector=Fixed(*found), **options)
    return predictor.predict_hands(photo, K=K)[0]


# -- (a) a rotated hand comes back in the photo's frame -------------------------------------------


@pytest.mark.parametrize("k", [1, 2, 3])
@pytest.mark.parametrize("given_K", [False, True])
def test_a_turned_photo_with_the_matching_angle_predicts_the_turned_hand(k, given_K):
    """Photo turned by k·90° (np.rot90) + the angle that stands the hand up again == the prediction turned."""
    w, h = 64, 48
    photo = _scene(w, h, wrist=(31.3, 33.1), tip=(32.6, 13.4))
    box = (12.0, 4.0, 52.0, 44.0)  # the crop itself (crop_margin 1): 40 px square, resized to 32
    K = np.array([[90.0, 0.0, 29.0], [0.0, 90.0, 21.5], [0.0, 0.0, 1.0]]) if given_K else None
    model = MarkerModel()
    [upright] = _predict(model, photo, Detection(box), margin=1.0, K=K)
    turned_photo = np.ascontiguousarray(np.rot90(photo, k))
    turned_box = _rot90_box(box, w, h, k)
    angle = math.remainder(-k * math.pi / 2, 2 * math.pi)  # turning the crop back: -90° per turn
    turned_K = None
    if given_K:
        turned_K = K.copy()
        turned_K[:2, 2] = _rot90_point(K[:2, 2], w, h, k)
    [turned] = _predict(model, turned_photo, Detection(turned_box, angle=angle), margin=1.0, K=turned_K)
    assert turned.angle == angle and turned.box == pytest.approx(turned_box)
    # The model saw the same upright hand both times (a whole-pixel box: the very same samples).
    np.testing.assert_allclose(model.seen[1], model.seen[0], atol=1e-6)
    # 2D: the photo's pixels turned; 3D: the camera frame turned about z the same way.
    np.testing.assert_allclose(turned.joints2d, _rot90_point(upright.joints2d, w, h, k), atol=0.5)
    M = rotation_z(-k * math.pi / 2)  # (x, y) -> (y, -x) per turn, as the pixels about the centre
    scale = np.abs(upright.joints3d).max()
    np.testing.assert_allclose(turned.joints3d, upright.joints3d @ M.T, atol=1e-5 * scale)
    np.testing.assert_allclose(turned.translation, upright.translation @ M.T, rtol=1e-5, atol=1e-7)
    # Every output is in the turned photo's own frame: joints2d is the projection of the 3D hand.
    np.testing.assert_allclose(project(turned.camera_joints, turned.K), turned.joints2d, atol=1e-3)
    if given_K:
        np.testing.assert_array_equal(turned.K, turned_K)  # Prediction.K stays the photo's
    # And the hand is where its markers are.
    wrist, tip = _rot90_point(np.array([(31.3, 33.1), (32.6, 13.4)]), w, h, k)
    np.testing.assert_allclose(turned.joints2d[[0, TIP]], [wrist, tip], atol=0.5)


@pytest.mark.parametrize("angle", [0.3, -2.0, 2.8, math.pi / 2])
def test_a_hand_at_any_angle_is_seen_upright_and_comes_back_where_it_is(angle):
    w = h = 64
    centre, length = np.array([32.4, 31.7]), 18.0
    up = np.array([math.sin(angle), -math.cos(angle)])  # the crop's "up", turned clockwise on screen
    wrist, tip = centre - up * length / 2, centre + up * length / 2
    photo = _scene(w, h, wrist, tip, seed=2)
    model = MarkerModel()
    half = 20.0
    box = (centre[0] - half, centre[1] - half, centre[0] + half, centre[1] + half)
    [hand] = _predict(model, photo, Detection(box, angle=angle), margin=1.0)
    seen_wrist, seen_tip = model.seen[0][0]
    assert abs(seen_tip[0] - seen_wrist[0]) < 0.3 and seen_tip[1] < seen_wrist[1] - 10  # upright
    np.testing.assert_allclose(hand.joints2d[[0, TIP]], [wrist, tip], atol=0.5)
    np.testing.assert_allclose(project(hand.camera_joints, hand.K), hand.joints2d, atol=1e-3)
    # In 3D too the hand points along the photo's "up" of the detection (the joints are at about one depth).
    direction = hand.joints3d[TIP, :2] / np.linalg.norm(hand.joints3d[TIP, :2])
    assert direction @ up > 0.999


def test_a_real_network_with_an_image_space_head_is_equivariant_under_the_turn():
    """The 2.5D heatmap head lifts with the crop's K: a rot90 photo + angle gives its prediction turned."""
    from handzoo.model import build_hand_model

    torch.manual_seed(0)
    net = build_hand_model("resnet18", head="heatmap25d", image_size=32).eval()
    w, h = 64, 48
    photo = _scene(w, h, wrist=(30, 30), tip=(34, 12), seed=5)
    box = (12.0, 4.0, 52.0, 44.0)
    K = np.array([[70.0, 0.0, 35.0], [0.0, 70.0, 20.0], [0.0, 0.0, 1.0]])
    [a] = _predict(net, photo, Detection(box), margin=1.0, K=K)
    turned_K = K.copy()
    turned_K[:2, 2] = _rot90_point(K[:2, 2], w, h, 1)
    turned = np.ascontiguousarray(np.rot90(photo))
    [b] = _predict(
        net, turned, Detection(_rot90_box(box, w, h, 1), angle=-math.pi / 2), margin=1.0, K=turned_K
    )
    M = rotation_z(-math.pi / 2)
    np.testing.assert_allclose(b.joints3d, a.joints3d @ M.T, atol=2e-4 * np.abs(a.joints3d).max())
    np.testing.assert_allclose(b.joints2d, _rot90_point(a.joints2d, w, h, 1), atol=0.05)


# -- (b) the turned crop's pixels ------------------------------------------------------------------


def _bilinear_reference(image: np.ndarray, to_image: np.ndarray, size: int, fill, sub: int = 1) -> np.ndarray:
    """A slow per-pixel sampler: output pixel (i, j) is the mean of sub×sub bilinear samples of the
    image at ``to_image`` of points spread over [i, i+1)×[j, j+1); the image is continued by ``fill``
    beyond its edges, and pixel (0,0) covers [0,1)²."""
    h, w = image.shape[:2]
    img = image.astype(np.float64)
    fill = np.asarray(fill, dtype=np.float64)

    def pixel(x: int, y: int) -> np.ndarray:
        return img[y, x] if 0 <= x < w and 0 <= y < h else fill

    out = np.zeros((size, size, 3))
    offsets = (np.arange(sub) + 0.5) / sub
    for j in range(size):
        for i in range(size):
            for dy in offsets:
                for dx in offsets:
                    x, y, _ = to_image @ np.array([i + dx, j + dy, 1.0])
                    cx, cy = math.floor(x - 0.5), math.floor(y - 0.5)
                    ax, ay = x - 0.5 - cx, y - 0.5 - cy
                    top = (1 - ax) * pixel(cx, cy) + ax * pixel(cx + 1, cy)
                    bottom = (1 - ax) * pixel(cx, cy + 1) + ax * pixel(cx + 1, cy + 1)
                    out[j, i] += ((1 - ay) * top + ay * bottom) / sub**2
    return out


def _smooth(w: int, h: int, seed: int, cells: int = 8) -> np.ndarray:
    """A (h,w,3) uint8 image of random colours on a grid of ``cells``-pixel cells, bicubically blended."""
    rng = np.random.default_rng(seed)
    small = rng.integers(0, 256, (max(h // cells, 2), max(w // cells, 2), 3), dtype=np.uint8)
    return np.asarray(Image.fromarray(small).resize((w, h), Image.Resampling.BICUBIC))


@pytest.mark.parametrize(
    "box, angle",
    [((9.5, 6.2, 29.5, 26.2), 0.7), ((-6.0, 20.0, 18.0, 44.0), -2.4)],  # inside; reaching out of it
)
def test_an_enlarged_turned_crop_is_the_bilinear_sample_of_the_turned_square(box, angle):
    image, fill = _smooth(40, 36, seed=1), (10, 200, 30)
    crop = load_crop(image, S, box=box, angle=angle, fill=fill)
    assert crop.angle == angle and crop.box == pytest.approx(box) and crop.pixels.shape == (S, S, 3)
    reference = _bilinear_reference(image, np.linalg.inv(rotated_crop_affine(box, angle, S)), S, fill)
    diff = np.abs(crop.pixels - reference)
    # A colour step between the image and the fill is a hard edge: a sample a hair on either side of it.
    assert np.mean(diff <= 1.0) > 0.98 and np.median(diff) <= 0.5


def test_a_reduced_turned_crop_is_the_antialiased_sample_of_the_turned_square():
    image, box, angle = _smooth(64, 64, seed=4, cells=16), (14.3, 13.1, 50.3, 49.1), -0.4
    crop = load_crop(image, 12, box=box, angle=angle)
    # Each output pixel covers 3×3 image pixels: compared with the mean of 6×6 bilinear samples over it
    # (a box filter; the resize's is a triangle, hence the few levels).
    to_image = np.linalg.inv(rotated_crop_affine(box, angle, 12))
    diff = np.abs(crop.pixels - _bilinear_reference(image, to_image, 12, (0, 0, 0), 6))
    assert diff.mean() < 1.0 and diff.max() < 4.0, (diff.mean(), diff.max())


@pytest.mark.parametrize(
    "box, angle, size",
    [
        ((16.2, 17.3, 112.2, 113.3), 0.3, 8),  # 12 image pixels per crop pixel: 4×4 blocks averaged first
        ((30.2, 30.3, 100.2, 100.3), -2.0, 6),  # 3×3 blocks
        ((44.3, 43.1, 80.3, 79.1), -0.4, 12),
        ((40.6, 41.7, 80.1, 81.2), 2.2, 32),
        ((54.2, 54.7, 74.1, 74.6), 0.9, 32),  # enlarged
    ],
)
def test_a_turned_crop_of_a_ramp_is_the_ramp_at_the_mapped_pixel_centres(box, angle, size):
    """On a linear image every averaging filter gives the value at the centre: no half-pixel slip."""
    yy, xx = np.mgrid[0:128, 0:128] + 0.5

    def ramp(x, y):
        return np.stack([1.2 * x + 0.7 * y, 0.5 * x + 1.3 * y, 20 + 1.6 * x], -1)

    crop = load_crop(np.round(ramp(xx, yy)).astype(np.uint8), size, box=box, angle=angle).pixels
    centres = np.stack(np.meshgrid(np.arange(size) + 0.5, np.arange(size) + 0.5), -1)
    to_image = np.linalg.inv(rotated_crop_affine(box, angle, size))
    points = centres @ to_image[:2, :2].T + to_image[:2, 2]
    diff = crop - ramp(points[..., 0], points[..., 1])  # the turned squares lie inside the image
    assert np.abs(diff.mean(axis=(0, 1))).max() < 0.35 and np.abs(diff).max() < 1.3, diff


# -- (c) the crop's camera ---------------------------------------------------------------------------


@pytest.mark.parametrize("angle", [0.0, 0.4, -1.9, math.pi, 3.0])
def test_the_turned_crop_is_an_upright_camera_turned_about_its_axis(angle):
    K = np.array([[512.0, 0.0, 301.5], [0.0, 512.0, 227.25], [0.0, 0.0, 1.0]])
    box = (180.3, 95.7, 420.9, 336.3)
    K_crop, Rz, A = rotated_crop_K(K, box, angle, 224)
    np.testing.assert_allclose(K_crop @ Rz, A @ K, rtol=0, atol=1e-9)
    np.testing.assert_array_equal(K_crop[[1, 2, 2], [0, 0, 1]], [0.0, 0.0, 0.0])  # upper-triangular
    assert K_crop[2, 2] == 1.0 and abs(K_crop[0, 1]) < 1e-9 and abs(K_crop[0, 0] - K_crop[1, 1]) < 1e-9
    assert K_crop[0, 0] == pytest.approx(512.0 * 224 / (420.9 - 180.3), rel=1e-12)
    np.testing.assert_allclose(Rz, rotation_z(-angle), atol=1e-12)
    np.testing.assert_allclose(A, rotated_crop_affine(box, angle, 224), atol=0)
    # The box's centre is the crop's; the crop's corners are the square's turned corners.
    corners = crop_corners(box, angle)
    mapped = np.c_[corners, np.ones(4)] @ A[:2].T
    np.testing.assert_allclose(mapped, [[0, 0], [224, 0], [224, 224], [0, 224]], atol=1e-9)
    # Points: the crop sees X at A·K·X, i.e. Rz·X through K_crop.
    X = np.random.default_rng(0).normal(size=(21, 3)) * 0.05 + [0.0, 0.0, 0.5]
    np.testing.assert_allclose(project(X @ Rz.T, K_crop), project(X, A @ K), atol=1e-9)
    if angle == 0.0:
        np.testing.assert_allclose(K_crop, crop_resize_K(K, box, 224), atol=1e-12)


def test_non_square_pixels_still_split_exactly():
    K = np.array([[500.0, 0.0, 320.0], [0.0, 540.0, 240.0], [0.0, 0.0, 1.0]])
    K_crop, Rz, A = rotated_crop_K(K, (100.0, 50.0, 400.0, 350.0), 0.9, 64)
    np.testing.assert_allclose(K_crop @ Rz, A @ K, rtol=0, atol=1e-9)
    assert K_crop[1, 0] == K_crop[2, 0] == K_crop[2, 1] == 0.0 and K_crop[0, 0] > 0 and K_crop[1, 1] > 0
    np.testing.assert_allclose(Rz @ Rz.T, np.eye(3), atol=1e-12)
    assert np.linalg.det(Rz) == pytest.approx(1.0) and Rz[2, 2] == 1.0


# -- (d) a left hand, turned ------------------------------------------------------------------------


@pytest.mark.parametrize("model_name", [None, "resnet18"])
def test_a_turned_left_hand_is_the_mirrored_turned_right_hand(model_name):
    """predict(mirror(I), left, -angle) == mirror(predict(I, right, angle)): mirrored in the upright crop."""
    w, h, angle = 60, 56, 0.6
    up = np.array([math.sin(angle), -math.cos(angle)])
    wrist, tip = np.array([29.0, 28.0]) - 8 * up, np.array([29.0, 28.0]) + 8 * up
    photo = _scene(w, h, wrist, tip, seed=3)
    mirrored = np.ascontiguousarray(photo[:, ::-1])
    box = (12.5, 10.0, 46.5, 44.0)
    if model_name is None:
        model = MarkerModel()
    else:
        torch.manual_seed(0)
        model = handzoo.create_model(model_name, image_size=32).eval()
    [right] = _predict(model, photo, Detection(box, handedness="right", angle=angle), margin=1.0)
    mirrored_box = (w - box[2], box[1], w - box[0], box[3])
    [left] = _predict(model, mirrored, Detection(mirrored_box, handedness="left", angle=-angle), margin=1.0)
    assert (right.hand, left.hand) == ("right", "left")
    flip = np.diag([-1.0, 1.0, 1.0])
    scale = np.abs(right.joints3d).max()
    np.testing.assert_allclose(left.joints3d, right.joints3d @ flip, atol=1e-5 * scale)
    np.testing.assert_allclose(left.joints2d[:, 0], w - right.joints2d[:, 0], atol=0.02)
    np.testing.assert_allclose(left.joints2d[:, 1], right.joints2d[:, 1], atol=0.02)
    if model_name is None:  # the marker model: the hand is where it is, in both photos
        np.testing.assert_allclose(right.joints2d[[0, TIP]], [wrist, tip], atol=0.5)
        np.testing.assert_allclose(left.joints2d[[0, TIP], 0], w - np.array([wrist[0], tip[0]]), atol=0.5)
        # Without the mirror the marker model sees a left hand: its crop has the markers mirrored.
        [unmirrored] = _predict(
            model, mirrored, Detection(mirrored_box, angle=-angle), margin=1.0, hand="right"
        )
        np.testing.assert_allclose(unmirrored.joints2d[[0, TIP]], left.joints2d[[0, TIP]], atol=0.5)
        assert np.abs(unmirrored.joints3d - left.joints3d).max() > 1e-3  # across-offsets land mirrored


# -- (e) angle 0 is the axis-aligned crop, and the margin a detector asks for ----------------------


@pytest.mark.parametrize(
    "box, worst",
    [
        ((12.0, 4.0, 52.0, 44.0), 0),  # inside, whole pixels: the same samples
        ((11.6, 3.7, 51.1, 43.2), 8),  # inside, between pixels: bilinear samples blur a little
        ((20.0, 10.0, 40.0, 30.0), 2),  # enlarged
        ((-7.5, 3.0, 30.5, 41.0), 40),  # across the image's edge: where the fill begins moves a hair
    ],
)
def test_angle_zero_is_the_axis_aligned_crop_and_a_tiny_angle_is_close_to_it(box, worst):
    image = _smooth(64, 48, seed=6)
    plain = load_crop(image, S, box=box, fill=(10, 200, 30))
    zero = load_crop(image, S, box=box, angle=0.0, fill=(10, 200, 30))
    np.testing.assert_array_equal(zero.pixels, plain.pixels)
    assert zero.angle == 0.0 and plain.angle == 0.0
    tiny = load_crop(image, S, box=box, angle=1e-9, fill=(10, 200, 30))
    diff = np.abs(tiny.pixels.astype(int) - plain.pixels)
    assert tiny.angle == 1e-9 and diff.max() <= worst and diff.mean() < 1.5, (diff.max(), diff.mean())


def test_a_detection_without_angle_predicts_as_before_and_the_margin_comes_from_the_detector():
    photo = _scene(64, 48, wrist=(31.3, 33.1), tip=(32.6, 13.4))
    model = MarkerModel()
    tight = (20.0, 10.0, 44.0, 38.0)
    with Predictor(model, device="cpu") as plain:
        [direct] = plain.predict(photo, boxes=[_grown(tight, DEFAULT_MARGIN)])
    default = Predictor(model, device="cpu", detector=Fixed(Detection(tight)))
    [[hand]] = default.predict_hands(photo)
    assert default.margin == DEFAULT_MARGIN and hand.angle == 0.0 and hand.box == pytest.approx(direct.box)
    np.testing.assert_array_equal(hand.joints3d, direct.joints3d)
    np.testing.assert_array_equal(hand.joints2d, direct.joints2d)
    # A detector whose box is the whole crop says so; an explicit margin still wins.
    framed = Predictor(model, device="cpu", detector=Fixed(Detection(tight), crop_margin=1.0))
    assert framed.margin == 1.0 and framed.predict_hands(photo)[0][0].box == pytest.approx((18, 10, 46, 38))
    assert Predictor(model, device="cpu", detector=Fixed(crop_margin=1.0), margin=1.5).margin == 1.5
    with pytest.raises(UsageError, match="margin must be at least 1"):
        Predictor(model, device="cpu", detector=Fixed(crop_margin=0.5))


def _grown(box, margin):
    cx, cy = (box[0] + box[2]) / 2, (box[1] + box[3]) / 2
    half = max(box[2] - box[0], box[3] - box[1]) * margin / 2
    return (cx - half, cy - half, cx + half, cy + half)


# -- the outputs: JSON and the picture -------------------------------------------------------------


def test_predict_outputs_record_the_angle_and_draw_the_turned_square(tmp_path):
    from handzoo.commands.inference_commands import _write_hands

    photo = _scene(64, 48, wrist=(31.3, 33.1), tip=(32.6, 13.4))
    path = tmp_path / "turned.png"
    Image.fromarray(photo).save(path)
    found = [Detection((12.0, 4.0, 52.0, 44.0), 0.9, "right", 0.5), Detection((2.0, 2.0, 20.0, 20.0), 0.4)]
    predictor = Predictor(MarkerModel(), device="cpu", detector=Fixed(*found, crop_margin=1.0))
    [hands] = predictor.predict_hands([str(path)])
    _write_hands(hands, path, tmp_path, "turned", predictor, pictures=True)
    data = json.loads((tmp_path / "turned.json").read_text())
    assert [h["angle"] for h in data["hands"]] == [0.5, 0.0] and "angle" in data["hands"][0]["units"]
    assert data["hands"][0]["box"] == [12.0, 4.0, 52.0, 44.0]
    assert Image.open(tmp_path / data["picture"]).size[1] == 512
    # The first hand's crop is drawn turned: the dashed outline runs through its turned corners.
    fig = prediction_figure(
        Image.fromarray(photo),
        hands[0].joints2d,
        hands[0].joints3d,
        hands[0].box,
        others=[(hands[1].joints2d, hands[1].box, hands[1].angle)],
        angle=hands[0].angle,
    )
    outlines = [line.get_xydata() for line in fig.axes[0].lines if line.get_linestyle() == "--"]
    np.testing.assert_allclose(outlines[0][:4], crop_corners(hands[0].box, 0.5), atol=1e-9)
    np.testing.assert_allclose(outlines[1][:4], crop_corners(hands[1].box), atol=1e-9)
