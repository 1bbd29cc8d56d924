"""Pictures explain themselves: legends beside the data, units on the axes, labels that do not collide."""

from __future__ import annotations

import numpy as np
from PIL import Image

from handzoo import joints
from handzoo.inference.draw import prediction_figure
from handzoo.runner.plots import curves_figure, loss_label


def test_curves_legend_stays_off_the_points_and_the_loss_axis_has_a_unit():
    history = [{"step": s, "loss": 0.1 / s} for s in range(1, 41)]
    history += [{"step": s, "val_pa_mpjpe_mm": 20.0 - s / 10} for s in (10, 20, 30, 40)]
    history.append({"step": 40, "baseline_pa_mpjpe_mm": 17.5})
    fig = curves_figure(history, "resnet18 on synthetic", loss="l1_pa")
    fig.canvas.draw()
    renderer = fig.canvas.get_renderer()
    loss_ax, val_ax = fig.axes
    assert loss_ax.get_ylabel() == "train loss (l1_pa), m" and "mm" in val_ax.get_ylabel()
    legend = val_ax.get_legend().get_window_extent(renderer)
    points = val_ax.transData.transform([(s, 20.0 - s / 10) for s in (10, 20, 30, 40)])
    assert not any(legend.contains(x, y) for x, y in points)
    assert not legend.overlaps(val_ax.get_window_extent(renderer))  # beside the panel, not in it
    assert loss_label("l2") == "train loss (l2), m²"
    assert loss_label("l1", extra_terms=True) == "train loss (l1 + model terms)"  # mixed units: none claimed


def test_prediction_picture_names_the_finger_colours_and_its_axis_labels_do_not_collide():
    rng = np.random.default_rng(0)
    image = Image.fromarray(rng.integers(0, 255, (240, 320, 3), dtype=np.uint8))
    fig = prediction_figure(
        image, rng.uniform(40, 200, (21, 2)), rng.normal(0, 0.03, (21, 3)), (40, 0, 280, 240)
    )
    fig.canvas.draw()
    renderer = fig.canvas.get_renderer()
    legends = [ax.get_legend() for ax in fig.axes if ax.get_legend() is not None]
    assert len(legends) == 1
    texts = [t.get_text() for t in legends[0].get_texts()]
    assert texts == [*joints.FINGERS, "wrist"]
    colours = [tuple(h.get_color()) for h in legends[0].legend_handles[:5]]
    assert colours == [joints.FINGER_COLORS[f] for f in joints.FINGERS]
    camera, side = fig.axes[1:]
    # The axis along each view's line of sight (depth seen from the camera, x seen from the side)
    # is a few pixels long: it carries no tick labels or label to pile up.
    for ax, edge_on in ((camera, "y"), (side, "x")):
        axis = getattr(ax, f"{edge_on}axis")
        assert axis.label.get_text() == "" and not any(t.get_text() for t in axis.get_ticklabels())
    assert camera.get_xlabel() == "x mm" and camera.get_zlabel() == "-y mm"
    assert side.get_ylabel() == "z mm" and side.get_zlabel() == "-y mm"
    for ax in (camera, side):  # the two visible labels of a panel stay apart
        shown = [a.label for a in (ax.xaxis, ax.yaxis, ax.zaxis) if a.label.get_text()]
        assert not shown[0].get_window_extent(renderer).overlaps(shown[1].get_window_extent(renderer))
