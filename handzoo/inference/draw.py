"""Pictures of a prediction: the 2D skeleton on the image, beside the 3D skeleton from two views.

Layout (PNG, exact size, see :func:`picture_size`): three panels of height
:data:`PANEL` pixels. Left: the image with the crop square (dashed; turned
with the crop when a detection rotated it) and the projected skeleton; its
width follows the image's aspect ratio, clamped to [:data:`MIN_ASPECT`,
:data:`MAX_ASPECT`] (extreme images are letterboxed).
Middle and right: PANEL×PANEL 3D plots in millimetres, root-relative, seen
from the camera and from the side. One colour per finger
(``handzoo.joints.FINGER_COLORS``); the wrist is grey.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image

from handzoo import joints

PANEL = 512  # pixels
DPI = 128  # a power of two: inches × DPI is exact, so the PNG has exactly the documented size
MIN_ASPECT, MAX_ASPECT = 0.5, 3.0
WRIST_COLOR = (0.5, 0.5, 0.5)
LABEL_PAD = 4  # points between a 3D axis' tick labels and its label


def picture_size(image_size: tuple[int, int]) -> tuple[int, int]:
    """(width, height) in pixels of the picture of an image of (width, height) pixels."""
    w, h = image_size
    overlay = round(PANEL * min(max(w / h, MIN_ASPECT), MAX_ASPECT))
    return overlay + 2 * PANEL, PANEL


def _bone_colors() -> list[tuple[float, float, float]]:
    return [joints.FINGER_COLORS[joints.finger_of(child)] for _parent, child in joints.BONES]


def _joint_colors() -> list[tuple[float, float, float]]:
    return [WRIST_COLOR if i == joints.ROOT else joints.FINGER_COLORS[joints.finger_of(i)] for i in range(21)]


def crop_corners(box, angle: float = 0.0) -> np.ndarray:
    """(4,2) pixels: the corners of the crop square of ``box`` turned clockwise on screen by ``angle``.

    In order top-left, top-right, bottom-right, bottom-left as the model sees
    the crop (:func:`handzoo.geometry.rotated_crop_affine`).
    """
    x0, y0, x1, y1 = (float(v) for v in box)
    half = max(x1 - x0, y1 - y0) / 2
    centre = np.array([(x0 + x1) / 2, (y0 + y1) / 2])
    c, s = np.cos(angle), np.sin(angle)
    rotation = np.array([[c, -s], [s, c]])  # clockwise on screen (y down) for a positive angle
    square = np.array([[-half, -half], [half, -half], [half, half], [-half, half]])
    return centre + square @ rotation.T


def _draw_2d(ax, image: Image.Image, hands: list[tuple], panel_px: tuple[int, int]) -> None:
    """The image with every hand's crop square (dashed) and projected skeleton.

    ``hands``: (joints2d, box) or (joints2d, box, angle) per hand.
    """
    w, h = image.size
    shown = image
    if w > 2 * panel_px[0] or h > 2 * panel_px[1]:  # no need to hand matplotlib more pixels than it draws
        shown = image.copy()
        shown.thumbnail((2 * panel_px[0], 2 * panel_px[1]), Image.Resampling.BILINEAR)
    # extent in the pixel-edge convention: pixel (0,0) covers [0,1) x [0,1).
    ax.imshow(np.asarray(shown), extent=(0, w, h, 0), interpolation="antialiased")
    corners = []
    for joints2d, box, *turn in hands:
        angle = float(turn[0]) if turn else 0.0
        if angle == 0.0:
            x0, y0, x1, y1 = box
            xs, ys = [x0, x1, x1, x0, x0], [y0, y0, y1, y1, y0]
            corners.append(np.array([[x0, y0], [x1, y1]], dtype=np.float64))
        else:
            square = crop_corners(box, angle)
            xs, ys = [*square[:, 0], square[0, 0]], [*square[:, 1], square[0, 1]]
            corners.append(square)
        ax.plot(xs, ys, ls="--", lw=1, color="white", alpha=0.8)
        for (p, c), color in zip(joints.BONES, _bone_colors(), strict=True):
            ax.plot(joints2d[[p, c], 0], joints2d[[p, c], 1], color=color, lw=2.5, solid_capstyle="round")
        ax.scatter(joints2d[:, 0], joints2d[:, 1], s=10, c=_joint_colors(), zorder=3, linewidths=0)
    points = np.concatenate([*corners, np.zeros((0, 2))])
    ax.set_xlim(min(0, points[:, 0].min(initial=0)), max(w, points[:, 0].max(initial=w)))
    ax.set_ylim(max(h, points[:, 1].max(initial=h)), min(0, points[:, 1].min(initial=0)))
    ax.set_aspect("equal")
    ax.set_axis_off()


def _draw_3d(ax, joints3d_mm: np.ndarray, title: str, elev: float, azim: float, edge_on: str) -> None:
    """One 3D panel; ``edge_on`` ('x', 'y' or 'z' of the plot) is the axis along the line of sight."""
    from matplotlib.ticker import MaxNLocator, NullFormatter

    # Plot axes: X = x (right), Y = z (depth), Z = -y (up), so "up" in the image is up in the plot.
    pts = np.stack([joints3d_mm[:, 0], joints3d_mm[:, 2], -joints3d_mm[:, 1]], axis=1)
    for (p, c), color in zip(joints.BONES, _bone_colors(), strict=True):
        ax.plot(*pts[[p, c]].T, color=color, lw=2.5)
    ax.scatter(*pts.T, s=8, c=_joint_colors(), depthshade=False)
    centre = 0.5 * (pts.min(0) + pts.max(0))
    half = max(float(np.ptp(pts, axis=0).max()) / 2, 1.0) * 1.1
    ax.set_xlim(centre[0] - half, centre[0] + half)
    ax.set_ylim(centre[1] - half, centre[1] + half)
    ax.set_zlim(centre[2] - half, centre[2] + half)
    ax.set_box_aspect((1, 1, 1))
    ax.view_init(elev=elev, azim=azim)
    for axis in (ax.xaxis, ax.yaxis, ax.zaxis):  # few ticks: readable, and ticks dominate drawing time
        axis.set_major_locator(MaxNLocator(3))
    # Labels clear of the tick labels (a negative pad put them on top of each other).
    ax.set_xlabel("x mm", fontsize=7, labelpad=LABEL_PAD)
    ax.set_ylabel("z mm", fontsize=7, labelpad=LABEL_PAD)
    ax.set_zlabel("-y mm", fontsize=7, labelpad=LABEL_PAD)
    ax.tick_params(labelsize=6, pad=0)
    # The axis seen edge-on is a few pixels long: its tick labels and label would pile up.
    hidden = {"x": ax.xaxis, "y": ax.yaxis, "z": ax.zaxis}[edge_on]
    hidden.set_major_formatter(NullFormatter())
    hidden.set_label_text("")
    ax.set_title(title, fontsize=9)


def draw_prediction(
    image: Image.Image,
    joints2d: np.ndarray,
    joints3d: np.ndarray,
    box,
    path: str | Path,
    title: str = "",
    others: list[tuple] | None = None,
    angle: float = 0.0,
) -> Path:
    """Write the picture of one prediction as a PNG of :func:`picture_size` pixels.

    Args:
        image: the original upright RGB image (``handzoo.inference.images.load_upright``).
        joints2d: (21,2) pixels of ``image``, canonical order.
        joints3d: (21,3) metres, root-relative, canonical order.
        box: (x0, y0, x1, y1) the crop the model saw, pixels of ``image``.
        path: the PNG to write.
        title: a line shown above the image panel (e.g. the file name).
        others: more hands of the same image as (joints2d, box) or
            (joints2d, box, angle): drawn on the image; the 3D panels show the first hand.
        angle: radians, the crop square turned clockwise on screen (a rotated
            detection, ``Prediction.angle``); drawn turned.
    """
    path = Path(path)
    figure = prediction_figure(image, joints2d, joints3d, box, title, others, angle)
    figure.savefig(path, dpi=DPI, format="png")
    return path


def _finger_legend(ax) -> None:
    """Which colour is which finger (and the wrist), in a corner of a 3D panel."""
    from matplotlib.lines import Line2D

    handles = [Line2D([], [], color=joints.FINGER_COLORS[f], lw=2.5) for f in joints.FINGERS]
    handles.append(Line2D([], [], color=WRIST_COLOR, marker="o", ls="", markersize=4))
    ax.legend(
        handles,
        [*joints.FINGERS, "wrist"],
        loc="upper right",
        fontsize=6,
        frameon=False,
        handlelength=1.5,
        borderaxespad=0.2,
    )


def prediction_figure(
    image: Image.Image,
    joints2d: np.ndarray,
    joints3d: np.ndarray,
    box,
    title: str = "",
    others=None,
    angle: float = 0.0,
):
    """The figure :func:`draw_prediction` writes (a matplotlib Figure on an Agg canvas)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    width, height = picture_size(image.size)
    overlay = width - 2 * PANEL
    fig = Figure(figsize=(width / DPI, height / DPI), dpi=DPI, facecolor="white")
    FigureCanvasAgg(fig)
    margin = 30 / height  # room for the titles
    ax2d = fig.add_axes((0.0, 0.0, overlay / width, 1.0 - margin))
    hands = [(np.asarray(joints2d, dtype=np.float64), box, angle)]
    hands += [(np.asarray(uv, dtype=np.float64), *rest) for uv, *rest in (others or [])]
    _draw_2d(ax2d, image, hands, (overlay, PANEL))
    if title:
        ax2d.set_title(title, fontsize=8)
    mm = np.asarray(joints3d, dtype=np.float64) * 1000.0
    views = (("camera view", 10.0, -90.0, "y"), ("side view", 10.0, 0.0, "x"))  # plot y = depth, x = x
    for k, (name, elev, azim, edge_on) in enumerate(views):
        ax = fig.add_axes(((overlay + k * PANEL) / width, 0.0, PANEL / width, 1.0 - margin), projection="3d")
        _draw_3d(ax, mm, name, elev, azim, edge_on)
        if k == 1:
            _finger_legend(ax)
    return fig
