"""``handzoo predict`` and ``handzoo.Predictor``: odd images, bad input, 2D geometry, bare-forward parity.

Images are written by the tests themselves (Pillow, and a hand-written 16-bit
RGB PNG encoder); the model is resnet18 at 64 px with seeded random weights
saved the way ``handzoo run`` saves them.
"""

from __future__ import annotations

import json
import struct
import zlib
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from handzoo.cli import main
from handzoo.inference.images import UnreadableImageError, load_crop
from handzoo.inference.predictor import Predictor
from handzoo.joints import CANONICAL, FINGER_COLORS
from tests.conftest import export_random_weights

SIZE = 64
PANEL = 512  # documented picture panel height (handzoo.inference.draw)


# -- fixtures -----------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def weights(tmp_path_factory) -> Path:
    return export_random_weights(tmp_path_factory.mktemp("run"), "resnet18", SIZE)


@pytest.fixture(scope="module")
def predictor(weights) -> Predictor:
    return Predictor("resnet18", weights=weights, device="cpu", batch_size=4)


def _noise(h: int, w: int, channels: int = 3, seed: int = 0, dtype=np.uint8) -> np.ndarray:
    rng = np.random.default_rng(seed)
    top = 256 if dtype == np.uint8 else 65536
    shape = (h, w, channels) if channels > 1 else (h, w)
    # Smooth noise (upsampled) so JPEG keeps it and resizing has something to average.
    small = rng.integers(0, top, size=(max(h // 4, 1), max(w // 4, 1), *shape[2:]))
    big = np.repeat(np.repeat(small, 4, axis=0), 4, axis=1)[:h, :w]
    big = np.pad(big, [(0, h - big.shape[0]), (0, w - big.shape[1])] + [(0, 0)] * (len(shape) - 2), "edge")
    return big.astype(dtype)


def write_png16_rgb(path: Path, rgb: np.ndarray) -> Path:
    """A 16-bit RGB PNG written by hand (Pillow cannot write one): IHDR, one IDAT, IEND."""
    h, w, _ = rgb.shape

    def chunk(tag: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + tag + data + struct.pack(">I", zlib.crc32(tag + data))

    rows = b"".join(b"\x00" + row.astype(">u2").tobytes() for row in rgb)  # filter type 0 per row
    header = struct.pack(">IIBBBBB", w, h, 16, 2, 0, 0, 0)
    body = chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(rows)) + chunk(b"IEND", b"")
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + body)
    return path


def _odd_images(folder: Path) -> dict[str, tuple[int, int]]:
    """Write the odd images; returns file name -> (width, height)."""
    folder.mkdir(parents=True, exist_ok=True)
    Image.fromarray(_noise(48, 64)).save(folder / "photo.jpg", quality=95)
    Image.fromarray(_noise(40, 40, 4, seed=1), "RGBA").save(folder / "cutout.png")
    Image.fromarray(_noise(50, 36, 1, seed=2), "L").save(folder / "gray.png")
    Image.fromarray(_noise(33, 45, 1, seed=3, dtype=np.uint16)).save(folder / "depth16.png")
    write_png16_rgb(folder / "rgb16.png", _noise(30, 28, 3, seed=4, dtype=np.uint16))
    Image.fromarray(_noise(30, 20, seed=5)).save(folder / "tiny.jpg")
    Image.fromarray(_noise(12, 400, seed=6)).save(folder / "wide.png")
    palette = Image.fromarray(_noise(24, 24, seed=7)).convert("P", palette=Image.Palette.ADAPTIVE, colors=16)
    palette.info["transparency"] = 0
    palette.save(folder / "palette.png", transparency=0)
    return {p.name: Image.open(p).size for p in folder.iterdir()}


def _cli(capsys, *args: str) -> tuple[int, str, str]:
    with pytest.raises(SystemExit) as exit_info:
        main(list(args))
    out = capsys.readouterr()
    return int(exit_info.value.code or 0), out.out, out.err


def _project(points_m: np.ndarray, K: np.ndarray) -> np.ndarray:
    """Independent pinhole projection, one joint at a time."""
    uv = []
    for x, y, z in points_m:
        uv.append([(K[0][0] * x + K[0][1] * y + K[0][2] * z) / z, (K[1][1] * y + K[1][2] * z) / z])
    return np.array(uv)


def _check_json(data: dict, image_size: tuple[int, int]) -> None:
    assert data["joint_names"] == list(CANONICAL) and data["joint_order"] == "canonical"
    assert data["model"] == "resnet18" and data["image_size"] == list(image_size)
    joints_mm = np.array(data["joints3d_mm"])
    assert joints_mm.shape == (21, 3) and np.all(joints_mm[0] == 0)  # root-relative
    K = np.array(data["K"])
    camera_m = (joints_mm + np.array(data["root_mm"])) / 1000.0
    np.testing.assert_allclose(np.array(data["joints2d"]), _project(camera_m, K), atol=1e-3)
    assert camera_m[0, 2] == pytest.approx(data["root_depth_m"])


def _picture_ok(path: Path, image_size: tuple[int, int]) -> None:
    w, h = image_size
    expected = (round(PANEL * min(max(w / h, 0.5), 3.0)) + 2 * PANEL, PANEL)
    with Image.open(path) as pic:
        assert pic.size == expected
        pixels = np.asarray(pic.convert("RGB")).reshape(-1, 3).astype(int)
    assert pixels.std() > 10
    for finger, color in FINGER_COLORS.items():  # one colour per finger is really drawn
        distance = np.abs(pixels - np.round(np.array(color) * 255)).sum(axis=1)
        assert (distance < 12).sum() > 20, finger


# -- the command line ---------------------------------------------------------------------------
def test_predict_odd_images_writes_json_and_pictures(tmp_path, weights, capsys):
    sizes = _odd_images(tmp_path / "images")
    out = tmp_path / "out"
    code, stdout, stderr = _cli(
        capsys, "predict", "resnet18", str(tmp_path / "images"), "--weights", str(weights),
        "--out", str(out), "--batch-size", "3",
    )  # fmt: skip
    assert code == 0, stderr
    assert f"wrote {len(sizes)} predictions" in stdout
    for name, size in sizes.items():
        stem = Path(name).stem
        data = json.loads((out / f"{stem}.json").read_text())
        _check_json(data, size)
        w, h = size
        side = min(w, h)  # default --crop center: the largest centred square
        assert data["box"] == pytest.approx([(w - side) / 2, (h - side) / 2, (w + side) / 2, (h + side) / 2])
        # Default K: 20 degrees across the crop, principal point at its centre.
        f = side / 2 / np.tan(np.radians(10.0))
        np.testing.assert_allclose(data["K"], [[f, 0, w / 2], [0, f, h / 2], [0, 0, 1]], rtol=1e-9)
        assert data["K_source"] == "default" and data["picture"] == f"{stem}_skeleton.png"
        _picture_ok(out / data["picture"], size)


def test_corrupt_file_in_a_folder_is_skipped_and_reported(tmp_path, weights, capsys):
    folder = tmp_path / "images"
    folder.mkdir()
    Image.fromarray(_noise(40, 40)).save(folder / "a.jpg")
    Image.fromarray(_noise(40, 40, seed=1)).save(folder / "c.png")
    good = (folder / "a.jpg").read_bytes()
    (folder / "b.jpg").write_bytes(good[: len(good) // 2])  # truncated
    (folder / "notes.txt").write_text("not an image: ignored")
    out = tmp_path / "out"
    code, _, stderr = _cli(
        capsys, "predict", "resnet18", str(folder), "--weights", str(weights), "--out", str(out),
        "--no-pictures",
    )  # fmt: skip
    assert code == 1
    assert "skipped" in stderr and "b.jpg" in stderr and "1 of 3 images could not be read" in stderr
    assert sorted(p.name for p in out.iterdir()) == ["a.json", "c.json"]
    _check_json(json.loads((out / "a.json").read_text()), (40, 40))


def test_empty_folder_and_missing_path_are_usage_errors(tmp_path, weights, capsys):
    (tmp_path / "empty").mkdir()
    (tmp_path / "empty" / "readme.txt").write_text("no images here")
    args = ["predict", "resnet18", "--weights", str(weights)]
    code, _, stderr = _cli(capsys, *args, str(tmp_path / "empty"))
    assert code == 2 and "holds no" in stderr and "empty" in stderr
    code, _, stderr = _cli(capsys, *args, str(tmp_path / "nope.jpg"))
    assert code == 2 and "does not exist" in stderr


@pytest.mark.parametrize(
    ("value", "needle"),
    [
        ("500,500,32", "got 3"),
        ("500,500,32,32,1", "got 5"),
        ("0,500,32,32", "positive"),
        ("500,-1,32,32", "positive"),
        ("a,b,c,d", "four numbers"),
    ],
)
def test_wrong_K_is_a_usage_error(tmp_path, weights, capsys, value, needle):
    Image.fromarray(_noise(32, 32)).save(tmp_path / "a.png")
    code, _, stderr = _cli(
        capsys, "predict", "resnet18", str(tmp_path / "a.png"), "--weights", str(weights), f"--K={value}"
    )
    assert code == 2 and "--K" in stderr and needle in stderr


def test_given_K_and_box(tmp_path, weights, capsys):
    Image.fromarray(_noise(60, 80)).save(tmp_path / "a.png")
    out = tmp_path / "out"
    code, _, stderr = _cli(
        capsys, "predict", "resnet18", str(tmp_path / "a.png"), "--weights", str(weights), "--out", str(out),
        "--K", "300,310,41,29", "--box", "10,20,40,30", "--no-pictures", "--root-depth", "0.4",
    )  # fmt: skip
    assert code == 0, stderr
    data = json.loads((out / "a.json").read_text())
    _check_json(data, (80, 60))
    assert data["K"] == [[300, 0, 41], [0, 310, 29], [0, 0, 1]] and data["K_source"] == "given"
    assert data["box"] == [10, 10, 40, 40]  # made square around its centre (25, 25)
    assert data["root_depth_m"] == pytest.approx(0.4)
    # The hand is centred on the box: its joints' bounding-box centre projects to the box centre.
    camera = (np.array(data["joints3d_mm"]) + np.array(data["root_mm"])) / 1000.0
    mid = (camera.min(0) + camera.max(0)) / 2
    np.testing.assert_allclose(_project(mid[None], np.array(data["K"]))[0], [25, 25], atol=1e-3)


# -- reading images -----------------------------------------------------------------------------
def test_modes_are_made_rgb_like_independent_references(tmp_path):
    """At S = image side the crop is the image itself, so pixels compare to numpy formulas."""
    rgba = _noise(32, 32, 4, seed=1)
    Image.fromarray(rgba, "RGBA").save(tmp_path / "rgba.png")
    expected = np.round(rgba[..., :3] * (rgba[..., 3:] / 255.0))
    np.testing.assert_allclose(load_crop(tmp_path / "rgba.png", 32).pixels, expected, atol=1)

    gray16 = _noise(32, 32, 1, seed=2, dtype=np.uint16)
    Image.fromarray(gray16).save(tmp_path / "g16.png")
    got = load_crop(tmp_path / "g16.png", 32).pixels
    np.testing.assert_array_equal(got, np.repeat((gray16 >> 8)[..., None], 3, axis=2))

    rgb16 = _noise(32, 32, 3, seed=3, dtype=np.uint16)
    got = load_crop(write_png16_rgb(tmp_path / "rgb16.png", rgb16), 32).pixels
    np.testing.assert_array_equal(got, rgb16 >> 8)

    palette = Image.fromarray(_noise(32, 32, seed=4)).convert("P", palette=Image.Palette.ADAPTIVE, colors=8)
    palette.save(tmp_path / "p.png", transparency=0)
    lut = np.array(palette.getpalette()[:24]).reshape(8, 3)
    index = np.asarray(palette)
    expected = np.where((index == 0)[..., None], 0, lut[index])
    np.testing.assert_array_equal(load_crop(tmp_path / "p.png", 32).pixels, expected)


def test_exif_orientation_is_applied(tmp_path):
    raw = _noise(32, 48, seed=5)  # stored 48 wide, 32 high; orientation 6 shows it rotated clockwise
    image = Image.fromarray(raw)
    exif = image.getexif()
    exif[0x0112] = 6
    image.save(tmp_path / "phone.jpg", exif=exif, quality=100)
    decoded = np.asarray(Image.open(tmp_path / "phone.jpg").convert("RGB"))
    upright = np.rot90(decoded, k=-1)  # 32 wide, 48 high
    crop = load_crop(tmp_path / "phone.jpg", 32)
    assert crop.image_size == (32, 48) and crop.box == (0.0, 8.0, 32.0, 40.0)
    np.testing.assert_array_equal(crop.pixels, upright[8:40])


def test_box_outside_the_image_is_filled(tmp_path):
    Image.fromarray(np.full((20, 20, 3), 200, np.uint8)).save(tmp_path / "a.png")
    crop = load_crop(tmp_path / "a.png", 40, box=(-10, 0, 30, 20), fill=(1, 2, 3))
    assert crop.box == (-10.0, -10.0, 30.0, 30.0)  # squared around the centre (10, 10)
    np.testing.assert_array_equal(crop.pixels[:, :8], np.broadcast_to([1, 2, 3], (40, 8, 3)))  # left pad
    np.testing.assert_array_equal(crop.pixels[12:28, 12:28], 200)  # the image, one pixel from any seam
    Image.fromarray(np.full((10, 20, 3), 200, np.uint8)).save(tmp_path / "wide.png")
    full = load_crop(tmp_path / "wide.png", 20, crop="full", fill=(0, 0, 0))
    assert full.box == (0.0, -5.0, 20.0, 15.0)  # the whole image, padded to a square
    assert full.pixels[:4].max() == 0 and full.pixels[6:14].min() == 200


# -- the Python API -----------------------------------------------------------------------------
def test_predictor_equals_a_bare_forward(tmp_path, predictor):
    big = _noise(96, 128, seed=8)
    Image.fromarray(big).save(tmp_path / "a.png")
    x, crops = predictor.preprocess([tmp_path / "a.png"])
    # Independent preprocessing: PIL's own resize of the centre square, then (p/255 - mean)/std.
    centre = (16, 0, 112, 96)
    ref = np.asarray(Image.fromarray(big).resize((SIZE, SIZE), Image.Resampling.BILINEAR, box=centre))
    mean, std = (np.array(predictor.preprocessing[k], dtype=np.float32) for k in ("mean", "std"))
    expected = ((ref / 255.0 - mean) / std).transpose(2, 0, 1)[None]
    np.testing.assert_allclose(x.numpy(), expected, atol=1e-5)
    with torch.inference_mode():
        bare = predictor.model(torch.from_numpy(expected.astype(np.float32))).joints3d[0].numpy()
    [pred] = predictor.predict(tmp_path / "a.png")
    np.testing.assert_allclose(pred.joints3d, bare, atol=1e-6)
    assert pred["joints3d"].shape == (21, 3) and pred.joints2d.shape == (21, 2) and pred.K.shape == (3, 3)
    assert pred.box == crops[0].box == (16.0, 0.0, 112.0, 96.0)


def test_paths_pil_images_and_arrays_agree_and_batching_does_not_matter(tmp_path, predictor):
    arrays = [_noise(40 + 8 * i, 56, seed=10 + i) for i in range(5)]
    for i, a in enumerate(arrays):
        Image.fromarray(a).save(tmp_path / f"{i}.png")
    inputs = [tmp_path / "0.png", Image.fromarray(arrays[1]), arrays[2], str(tmp_path / "3.png"), arrays[4]]
    together = predictor.predict(inputs)  # batch_size 4: two batches
    alone = [predictor.predict(a)[0] for a in arrays]
    for a, b in zip(together, alone, strict=True):
        np.testing.assert_allclose(a.joints3d, b.joints3d, atol=1e-5)
        np.testing.assert_allclose(a.joints2d, b.joints2d, atol=1e-3)
    assert together[0].source == str(tmp_path / "0.png") and together[1].source is None


def test_unreadable_image_raises_in_predict_and_is_skipped_in_iter_predict(tmp_path, predictor):
    (tmp_path / "bad.png").write_bytes(b"\x89PNG\r\n\x1a\nbroken")
    Image.fromarray(_noise(32, 32)).save(tmp_path / "ok.png")
    with pytest.raises(UnreadableImageError, match="bad.png"):
        predictor.predict([tmp_path / "ok.png", tmp_path / "bad.png"])
    results = dict(predictor.iter_predict([tmp_path / "bad.png", tmp_path / "ok.png"]))
    assert isinstance(results[0], UnreadableImageError) and results[1].joints3d.shape == (21, 3)


# -- JPEG decoding on the model's device ---------------------------------------------------------
def test_device_resampling_equals_pillows_box_resize():
    from handzoo.inference.device_decode import crop_on_device

    big = _noise(120, 160, seed=21)
    for box in [(20.0, 0.0, 140.0, 120.0), (33.3, 10.7, 97.9, 75.3), (0.0, 0.0, 30.0, 30.0)]:
        for size in (24, 64):
            ref = np.asarray(
                Image.fromarray(big).resize(
                    (size, size), Image.Resampling.BILINEAR, box=box, reducing_gap=None
                )
            )
            ours = crop_on_device(torch.from_numpy(big).permute(2, 0, 1), box, size, (0, 0, 0)).numpy()
            assert np.abs(ours.astype(int) - ref.astype(int)).max() <= 1, (box, size)


def test_device_decoding_fills_outside_the_image_like_the_cpu_path(tmp_path):
    from handzoo.inference.device_decode import crop_on_device

    image = torch.full((3, 20, 20), 200, dtype=torch.uint8)
    ours = crop_on_device(image, (-10.0, -10.0, 30.0, 30.0), 40, (1, 2, 3)).numpy()
    Image.fromarray(np.full((20, 20, 3), 200, np.uint8)).save(tmp_path / "a.png")
    cpu = load_crop(tmp_path / "a.png", 40, box=(-10, 0, 30, 20), fill=(1, 2, 3)).pixels
    assert np.abs(ours.astype(int) - cpu.astype(int)).max() <= 1


def test_device_decoding_agrees_with_the_cpu_path_and_leaves_other_files_to_it(tmp_path, weights):
    paths = []
    for i in range(3):  # photo-like: smooth colour fields, not 4-px blocks
        smooth = Image.fromarray(_noise(30, 40, seed=30 + i)).resize((640, 480), Image.Resampling.BICUBIC)
        smooth.save(tmp_path / f"{i}.jpg", quality=95)
        paths.append(tmp_path / f"{i}.jpg")
    Image.fromarray(_noise(60, 80, seed=40)).save(tmp_path / "p.png")
    rotated = Image.fromarray(_noise(48, 64, seed=41))
    exif = rotated.getexif()
    exif[0x0112] = 6
    rotated.save(tmp_path / "phone.jpg", exif=exif, quality=95)
    paths += [tmp_path / "p.png", tmp_path / "phone.jpg"]
    cpu = Predictor("resnet18", weights=weights, device="cpu", decode="cpu")
    dev = Predictor("resnet18", weights=weights, device="cpu", decode="device")
    assert Predictor("resnet18", weights=weights, device="cpu").decode == "cpu"  # auto off CUDA
    a, b = cpu.load(paths), dev.load(paths)
    for i, (x, y) in enumerate(zip(a, b, strict=True)):
        assert x.box == y.box and x.image_size == y.image_size and x.source == y.source
        diff = np.abs(np.asarray(y.pixels).astype(int) - x.pixels.astype(int))
        if i < 3:  # decoded by torchvision at full size vs Pillow's DCT-scaled draft: close, not equal
            assert torch.is_tensor(y.pixels) and diff.mean() < 1.0, (i, diff.mean())
        else:  # PNG and EXIF-rotated JPEG: the CPU path itself
            assert not torch.is_tensor(y.pixels) and diff.max() == 0
    pa, pb = cpu.predict(paths), dev.predict(paths)
    for x, y in zip(pa, pb, strict=True):
        assert np.abs(x.joints3d - y.joints3d).max() < 0.01  # metres, random weights
    with pytest.raises(Exception, match="decode must be"):
        Predictor("resnet18", weights=weights, device="cpu", decode="gpu")
