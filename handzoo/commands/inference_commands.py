"""``handzoo predict`` (keypoints JSON + pictures) and ``handzoo export`` (ONNX / TorchScript)."""

from __future__ import annotations

from pathlib import Path

import typer

from handzoo.errors import DataError, UsageError
from handzoo.files import json_text
from handzoo.inference.defaults import (
    DEFAULT_DETECTOR,
    DEFAULT_FOV_DEG,
    DEFAULT_MODEL,
    DEFAULT_ROOT_DEPTH,
    HAND_CHOICES,
)

PREDICT_HELP = f"""Predict 3D and 2D hand joints for images and folders of images (.jpg, .png).

`handzoo predict photo.jpg` (no model named) finds every hand with {DEFAULT_DETECTOR} and predicts it with
{DEFAULT_MODEL} (MediaPipe's landmark networks with their screen landmarks lifted to 3D; its
weights ship with handzoo, the palm detector's are fetched from PyPI once by `handzoo pull blazepalm`).
A model whose weights come with it or are listed in the zoo needs no --weights or --pretrained.

Writes, per image, NAME.json (joint names, canonical order; joints3d_mm root-relative millimetres;
joints2d pixels of the original image; the K, box, model and weights used) and NAME_skeleton.png
(the 2D skeleton on the image beside the 3D skeleton from two views) into --out.

2D joints are an approximation: the model predicts joints relative to the wrist and no translation,
so the wrist is placed at --root-depth metres with the hand centred on the crop, and projected with
--K, or by default with a camera of --fov degrees horizontal field of view across the crop.

--detect [DETECTOR] finds every hand of each image instead (a registered detector; alone, {DEFAULT_DETECTOR}):
each hand is cropped (its box made square, with a margin, turned upright when the detector gives an
angle), predicted and drawn, and NAME.json lists the hands with their boxes, scores and handedness.
--hand left mirrors each crop for the model (trained on right hands) and mirrors the prediction back;
auto (the default) takes the detector's handedness, right without a detector.

Exit code: 0 when every image was predicted; 1 when an image could not be read (it is skipped and
named, the others are still written) or on another failure; 2 on a usage error (bad --K or --box,
a missing path, a folder without images)."""


def weights_source(model: str, weights: str | None, pretrained: bool) -> tuple[str | None, bool]:
    """(weights, pretrained) for ``model``: as given, or, with neither, what comes with the model.

    A model that brings its own weights (registered with ``builtin_weights``)
    needs nothing and ignores --pretrained; a model with weights in the zoo
    uses them; any other model needs --weights.
    """
    from handzoo.plugins import get_registry
    from handzoo.zoo import find_architecture
    from handzoo.zoo.schema import parse_ref

    if weights is not None and pretrained:
        raise UsageError("pass either --weights FILE or --pretrained, not both")
    name, tag = parse_ref(model)
    entry = get_registry().get("model", name)  # an unknown name fails here, with suggestions
    if entry.metadata.get("builtin_weights"):
        if weights is not None:
            raise UsageError(f"{name} brings its own weights; drop --weights")
        return None, False
    if weights is not None or pretrained or tag is not None:
        return weights, pretrained
    arch = find_architecture(name)
    if arch is not None and arch.weights:
        return None, True
    raise UsageError(
        f"{name} has no published weights yet; pass --weights FILE (a model.safetensors written by "
        f"`handzoo run {name}`), or name a model with weights (`handzoo zoo`)"
    )


IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png")


def split_model_and_inputs(model: str, inputs: list[str] | None) -> tuple[str, list[str], bool]:
    """(model, inputs, model_named): ``handzoo predict photo.jpg`` names no model, only images."""
    from handzoo.plugins import get_registry
    from handzoo.zoo.schema import parse_ref

    registry = get_registry()
    if ("model", parse_ref(model)[0]) not in registry:
        if Path(model).exists():
            return DEFAULT_MODEL, [model, *(inputs or [])], False
        if Path(model).suffix.lower() in IMAGE_SUFFIXES or "/" in model:
            raise UsageError(f"{model} does not exist; pass an image file or a folder of images")
    if not inputs:
        raise UsageError(f"name the images to predict: handzoo predict {model} IMAGE... (or a folder)")
    return model, list(inputs), True


def _output_names(paths: list[Path], out: Path) -> list[str]:
    """A unique file stem in ``out`` per input image (no output may overwrite an input)."""
    stems = [p.stem for p in paths]
    repeated = {s for s in stems if stems.count(s) > 1}
    taken = {str(p.resolve()) for p in paths}
    names: list[str] = []
    used: set[str] = set()
    for path, stem in zip(paths, stems, strict=True):
        base = f"{stem}_{path.suffix.lstrip('.').lower()}" if stem in repeated else stem
        name, k = base, 1
        while name in used or any(
            str((out / f"{name}{ext}").resolve()) in taken for ext in (".json", "_skeleton.png")
        ):
            k += 1
            name = f"{base}_{k}"
        used.add(name)
        names.append(name)
    return names


def predict_command(
    model: str = typer.Argument(
        ...,
        help=f"A registered model name (`handzoo list models`); left out: {DEFAULT_MODEL}, with --detect.",
    ),
    inputs: list[str] = typer.Argument(None, help="Image files (.jpg, .png) and/or folders of images."),
    weights: str | None = typer.Option(None, "--weights", help="model.safetensors written by `handzoo run`."),
    pretrained: bool = typer.Option(
        False,
        "--pretrained",
        help="Use the zoo's published weights for MODEL (the default when it has some).",
    ),
    out: str = typer.Option("predictions", "--out", help="Folder for the JSON files and pictures."),
    crop: str | None = typer.Option(
        None, "--crop", help="center: largest centred square (default); full: whole image padded square."
    ),
    box: str | None = typer.Option(None, "--box", help="x0,y0,x1,y1 pixels: the hand's box (made square)."),
    K: str | None = typer.Option(None, "--K", help="fx,fy,cx,cy in pixels of the original image."),
    fov: float = typer.Option(
        DEFAULT_FOV_DEG, "--fov", help="Horizontal field of view (degrees) of the default K across the crop."
    ),
    root_depth: float = typer.Option(
        DEFAULT_ROOT_DEPTH, "--root-depth", help="Wrist depth (metres) assumed to compute 2D joints."
    ),
    batch_size: int = typer.Option(32, "--batch-size", min=1, help="Images per forward pass."),
    device: str = typer.Option("auto", "--device", help="auto (CUDA when available), cpu, cuda or cuda:N."),
    pictures: bool = typer.Option(True, "--pictures/--no-pictures", help="Also draw NAME_skeleton.png."),
    detect: str | None = typer.Option(
        None,
        "--detect",
        help=f"Find every hand with this detector (`handzoo list detectors`; alone: {DEFAULT_DETECTOR}).",
    ),
    max_hands: int | None = typer.Option(
        None, "--max-hands", min=1, help="With --detect: at most N per image."
    ),
    hand: str = typer.Option(
        "auto", "--hand", help="left, right or auto (the detector's handedness; right without one)."
    ),
) -> None:
    from handzoo.inference.camera import default_K, parse_K
    from handzoo.inference.images import crop_box, find_images, parse_box

    # Every usage error is found before the model is built.
    model, inputs, model_named = split_model_and_inputs(model, inputs)
    if not model_named and detect is None and box is None and crop is None:
        detect = DEFAULT_DETECTOR  # a photo and nothing else: find the hands in it
    if box is not None and crop is not None:
        raise UsageError("pass either --crop or --box, not both")
    if detect is not None and (box is not None or crop is not None):
        raise UsageError("--detect finds the boxes itself; pass it without --box or --crop")
    crop = crop or "center"
    crop_box((1, 1), crop)  # validates the mode
    the_box = parse_box(box) if box is not None else None
    the_K = parse_K(K) if K is not None else None
    if K is None:
        default_K((0.0, 0.0, 1.0, 1.0), fov)  # validates --fov
    if not root_depth > 0:
        raise UsageError(f"--root-depth {root_depth:g}: expected a positive distance in metres")
    if hand not in HAND_CHOICES:
        raise UsageError(f"--hand {hand!r}: expected one of {', '.join(HAND_CHOICES)}")
    if max_hands is not None and detect is None:
        raise UsageError("--max-hands applies with --detect only")
    weights, pretrained = weights_source(model, weights, pretrained)
    paths = find_images(inputs)

    from rich.progress import Progress

    from handzoo.commands.console import console as _console
    from handzoo.inference.predictor import Predictor

    predictor = Predictor(
        model,
        weights=weights,
        device=device,
        pretrained=pretrained,
        batch_size=batch_size,
        fov_deg=fov,
        root_depth=root_depth,
        detector=detect,
        hand=hand,
        max_hands=max_hands,
    )
    out_dir = Path(out)
    out_dir.mkdir(parents=True, exist_ok=True)
    names = _output_names(paths, out_dir)
    console, errors = _console(stderr=True), _console(stderr=True)
    failed: list[str] = []
    written = hands_found = 0
    with Progress(console=console, transient=True) as bar:
        task = bar.add_task(f"{predictor.name} on {predictor.device}", total=len(paths))
        files = [str(p) for p in paths]
        results = (
            predictor.iter_predict_hands(files, K=the_K)
            if detect is not None
            else predictor.iter_predict(files, boxes=the_box, K=the_K, crop=crop, skip_errors=True)
        )
        for index, result in results:
            if isinstance(result, Exception):
                failed.append(str(paths[index]))
                errors.print(
                    f"handzoo: warning: skipped {paths[index]} (unreadable image {len(failed)}, "
                    f"image {index + 1} of {len(paths)}): {result.reason}",
                    highlight=False,
                    markup=False,
                    soft_wrap=True,  # one line per skipped image, however long its path
                )
            elif isinstance(result, list):
                _write_hands(result, paths[index], out_dir, names[index], predictor, pictures)
                hands_found += len(result)
                written += 1
            else:
                _write_outputs(result, out_dir, names[index], predictor, pictures)
                written += 1
            bar.advance(task)
    found = f", {hands_found} hands found by {detect}" if detect is not None else ""
    _console().print(
        f"wrote {written} prediction{'s' if written != 1 else ''} to {out_dir}/ "
        f"({'JSON + picture' if pictures else 'JSON'} per image{found})",
        highlight=False,
    )
    if failed:
        shown = ", ".join(failed[:5]) + (f" and {len(failed) - 5} more" if len(failed) > 5 else "")
        raise DataError(
            f"{len(failed)} of {len(paths)} images could not be read and were skipped: {shown}; "
            "check or remove those files"
        )


def _write_json(data: dict, path: Path) -> None:
    # One key per line, each value compact: joints stay one readable row each.
    body = ",\n".join(f"  {json_text(k)}: {json_text(v)}" for k, v in data.items())
    path.write_text("{\n" + body + "\n}\n")


def _write_hands(hands, path: Path, out_dir: Path, name: str, predictor, pictures: bool) -> None:
    """One JSON per image listing every detected hand (best first), and one picture with all of them."""
    from handzoo.inference.images import load_upright

    # Every prediction knows its image's size; the image itself is read again only to draw
    # on it, or for its size when no hand was found.
    image = load_upright(str(path)) if pictures or not hands else None
    data = {
        "image": str(path),
        "image_size": list(hands[0].image_size if hands else image.size),
        "model": predictor.name,
        "weights": predictor.weights,
        "detector": predictor.detector_name,
        "num_hands": len(hands),
        "hands": [h.to_json(model=predictor.name, weights=predictor.weights) for h in hands],
    }
    if pictures and hands:
        from handzoo.inference.draw import draw_prediction

        first, rest = hands[0], hands[1:]
        picture = out_dir / f"{name}_skeleton.png"
        draw_prediction(
            image,
            first.joints2d,
            first.joints3d,
            first.box,
            picture,
            title=path.name,
            others=[(h.joints2d, h.box, h.angle) for h in rest],
            angle=first.angle,
        )
        data["picture"] = picture.name
    _write_json(data, out_dir / f"{name}.json")


def _write_outputs(result, out_dir: Path, name: str, predictor, pictures: bool) -> None:
    data = result.to_json(model=predictor.name, weights=predictor.weights)
    if pictures:
        from handzoo.inference.draw import draw_prediction
        from handzoo.inference.images import load_upright

        picture = out_dir / f"{name}_skeleton.png"
        draw_prediction(
            load_upright(result.source),
            result.joints2d,
            result.joints3d,
            result.box,
            picture,
            title=Path(result.source).name,
        )
        data["picture"] = picture.name
    _write_json(data, out_dir / f"{name}.json")


def export_command(
    model: str = typer.Argument(..., help="A registered model name (`handzoo list models`)."),
    weights: str | None = typer.Option(None, "--weights", help="model.safetensors written by `handzoo run`."),
    pretrained: bool = typer.Option(
        False,
        "--pretrained",
        help="Use the zoo's published weights for MODEL (the default when it has some).",
    ),
    fmt: str = typer.Option("onnx", "--format", help="onnx or torchscript."),
    out: str = typer.Option(..., "--out", help="The file to write (e.g. model.onnx, model.pt)."),
    image_size: int | None = typer.Option(
        None, "--image-size", min=16, help="Input side S (default: the model's)."
    ),
    opset: int | None = typer.Option(None, "--opset", help="ONNX opset (default 18, the minimum)."),
    verify: bool = typer.Option(
        True, "--verify/--no-verify", help="Compare the file's outputs with PyTorch on batches of 1 and 3."
    ),
) -> None:
    """Export MODEL as ONNX or TorchScript: images (B,3,S,S) -> joints3d (B,21,3) metres, dynamic B.

    The preprocessing (mean, std, input size), joint order, units, model name and handzoo
    version are stored in the file (ONNX metadata_props; TorchScript extra file handzoo.json).
    """
    from handzoo.export_formats import FORMATS, MIN_OPSET, export_model

    if fmt not in FORMATS:
        raise UsageError(f"--format {fmt!r}: expected one of {', '.join(FORMATS)}")
    if opset is not None and fmt != "onnx":
        raise UsageError("--opset applies to --format onnx only")
    if opset is not None and opset < MIN_OPSET:
        raise UsageError(f"--opset {opset}: the ONNX exporter writes opset {MIN_OPSET} or newer")
    weights, pretrained = weights_source(model, weights, pretrained)
    from handzoo.commands.console import console as _console
    from handzoo.inference.predictor import build_model

    net, name = build_model(model, weights, pretrained)
    report = export_model(
        net, out, fmt, name=name, weights=weights, image_size=image_size, opset=opset, verify=verify
    )
    console = _console()
    size = report.path.stat().st_size / 1e6
    shapes = ", ".join(f"{o} (B,{21 if o == 'joints3d' else 778},3)" for o in report.outputs)
    s = report.input_size[-1]
    detail = f", opset {report.metadata['opset']}" if fmt == "onnx" else ""
    console.print(f"wrote {report.path} ({fmt}{detail}, {size:.1f} MB): images (B,3,{s},{s}) -> {shapes}")
    if report.max_abs_diff is not None:
        console.print(
            f"matches PyTorch within {report.max_abs_diff:.1e} m on batches of "
            f"{' and '.join(map(str, report.checked_batches))}"
        )
    elif verify:
        console.print("not checked against PyTorch: install onnxruntime to check the file")


def register(app: typer.Typer) -> None:
    """Add ``predict`` and ``export`` to the ``handzoo`` command line."""
    app.command("predict", help=PREDICT_HELP)(predict_command)
    app.command("export")(export_command)
