"""The first-party augmenters on whole batches in torch (``data.pipeline=device``).

Each class is the batched twin of the augmenter of the same name in
:mod:`handzoo_data.augmenters`, with the same parameters and the same
distributions (see :mod:`handzoo.data.device_augment` for the batch layout and
the few interpolation differences). Everything is elementwise or a
``grid_sample`` over the batch: no per-sample Python loop and no host
synchronisation, so a GPU runs them at the speed of its memory.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from handzoo.plugin_api import (
    Batch,
    BatchAugmenter,
    BatchTransform,
    affine_grid,
    constant,
    eye,
    pixel_centres,
    randint,
    uniform,
)

_GREY = (1 / math.sqrt(3),) * 3
_LUMA = (0.299, 0.587, 0.114)


# ----------------------------------------------------------------------------- geometric
class BatchRotate(BatchAugmenter):
    """In-plane rotation about the image centre or the principal point; joints rotate about z."""

    name = "rotate"
    geometric = True

    def draw(self, n, size, K, generator) -> BatchTransform:
        rad = math.radians(self.params.degrees)
        angle = uniform((n,), -rad, rad, generator)
        w, h = size
        if self.params.center == "image":
            cx = torch.full((n,), w / 2.0, dtype=torch.float64, device=generator.device)
            cy = torch.full((n,), h / 2.0, dtype=torch.float64, device=generator.device)
        else:
            cx, cy = K[:, 0, 2].double(), K[:, 1, 2].double()
        c, s = torch.cos(angle), torch.sin(angle)
        R = eye(n, generator.device)
        R[:, 0, 0], R[:, 0, 1], R[:, 1, 0], R[:, 1, 1] = c, -s, s, c
        A = R.clone()
        A[:, 0, 2] = cx - c * cx + s * cy
        A[:, 1, 2] = cy - s * cx - c * cy
        return BatchTransform(A=A, M=R, M_inv=R.transpose(1, 2))


class BatchFlip(BatchAugmenter):
    """Horizontal mirror: u -> W - u, x -> -x (a right hand becomes a left hand)."""

    name = "flip"
    geometric = True

    def draw(self, n, size, K, generator) -> BatchTransform:
        A = eye(n, generator.device)
        A[:, 0, 0], A[:, 0, 2] = -1.0, float(size[0])
        M = eye(n, generator.device)
        M[:, 0, 0] = -1.0
        return BatchTransform(A=A, M=M, M_inv=M)


class BatchScale(BatchAugmenter):
    """Zoom about the image centre (log-uniform) plus a shift: a random crop; 3D joints unchanged."""

    name = "scale"
    geometric = True

    def draw(self, n, size, K, generator) -> BatchTransform:
        lo, hi = self.params.scale
        s = torch.exp(uniform((n,), math.log(lo), math.log(hi), generator))
        w, h = size
        t = self.params.translate
        tx, ty = uniform((n,), -t, t, generator) * w, uniform((n,), -t, t, generator) * h
        A = eye(n, generator.device)
        A[:, 0, 0], A[:, 1, 1] = s, s
        A[:, 0, 2] = (1 - s) * w / 2 + tx
        A[:, 1, 2] = (1 - s) * h / 2 + ty
        identity = eye(n, generator.device)
        return BatchTransform(A=A, M=identity, M_inv=identity)


# ----------------------------------------------------------------------------- textures
def blobs(n: int, size: tuple[int, int], generator: torch.Generator) -> torch.Tensor:
    """(n,3,H,W) smooth colour fields: a random g×g grid (g in 2..8) cubic to 16 px, then linear.

    Every sample has its own g without a per-sample loop: the grid is drawn on
    a 10×10 canvas whose cells beyond g repeat the last row and column (the
    replicated border of a g×g image), and one bicubic ``grid_sample`` reads
    each sample's g×g corner at 16 px.
    """
    dev = generator.device
    g = randint((n,), 2, 9, generator)
    cells = randint((n, 3, 10, 10), 0, 256, generator).float()
    idx = torch.minimum(torch.arange(10, device=dev)[None], (g - 1)[:, None])  # (n,10)
    cells = cells.gather(2, idx[:, None, :, None].expand(n, 3, 10, 10))
    cells = cells.gather(3, idx[:, None, None, :].expand(n, 3, 10, 10))
    # 16-px output edge u -> canvas edge u·g/16 -> grid_sample's [-1, 1] over 10 px
    k = g.double() / 16.0 * (16.0 / 10.0)
    theta = torch.zeros(n, 2, 3, dtype=torch.float64, device=dev)
    theta[:, 0, 0], theta[:, 1, 1] = k, k
    theta[:, 0, 2], theta[:, 1, 2] = k - 1.0, k - 1.0
    grid = affine_grid(theta, (16, 16))
    mid = F.grid_sample(cells, grid, mode="bicubic", padding_mode="border", align_corners=False)
    mid = mid.clamp(0.0, 255.0)
    return F.interpolate(mid, size=(size[1], size[0]), mode="bilinear", align_corners=False)


def noise(n: int, size: tuple[int, int], generator: torch.Generator) -> torch.Tensor:
    """Blobs plus zero-mean grey grain in [-24, 24]."""
    grain = randint((n, 1, size[1], size[0]), -24, 25, generator).float()
    return (blobs(n, size, generator) + grain).clamp(0.0, 255.0)


def periodic(kind: str, n: int, size: tuple[int, int], generator: torch.Generator) -> torch.Tensor:
    """(n,3,H,W) two-colour stripes (a sinusoid) or a rotated checkerboard, random angle and period."""
    w, h = size
    xs, ys = pixel_centres(size, generator.device)
    angle = uniform((n,), 0.0, math.pi, generator).float()
    steps = 256.0 / (uniform((n,), 0.05, 0.4, generator).float() * max(w, h))  # phase units per pixel
    c, s = (torch.cos(angle) * steps)[:, None, None], (torch.sin(angle) * steps)[:, None, None]
    offset = uniform((n,), 0.0, 256.0, generator).float()[:, None, None]
    phase = xs[None, None, :] * c + ys[None, :, None] * s + offset  # (n,H,W)
    if kind == "stripes":
        t = 0.5 + 0.5 * torch.sin(2 * math.pi * phase / 256.0)
    else:
        other = xs[None, None, :] * s - ys[None, :, None] * c + offset
        t = ((torch.remainder(phase, 256.0) >= 128) ^ (torch.remainder(other, 256.0) >= 128)).float()
    c0, c1 = (randint((n, 3), 0, 256, generator).float()[:, :, None, None] for _ in range(2))
    return c0 + t[:, None] * (c1 - c0)


def texture_batch(kinds: tuple[str, ...], n: int, size: tuple[int, int], generator) -> torch.Tensor:
    """(n,3,H,W) backgrounds, each of a kind drawn uniformly from ``kinds``.

    Every kind is drawn for the whole batch and each sample keeps its own:
    a few elementwise passes, cheaper on a GPU than gathering per kind (which
    would wait for the host).
    """
    choice = randint((n,), 0, len(kinds), generator)
    out = None
    for i, kind in enumerate(kinds):
        if kind == "blobs":
            tex = blobs(n, size, generator)
        elif kind == "noise":
            tex = noise(n, size, generator)
        else:
            tex = periodic(kind, n, size, generator)
        out = tex if out is None else torch.where((choice == i).view(-1, 1, 1, 1), tex, out)
    return out


# ----------------------------------------------------------------------------- pixel steps
class BatchBackground(BatchAugmenter):
    """Replace the pixels outside the hand mask by a procedural texture (no mask: unchanged)."""

    name = "background"
    commutes_with_geometry = True

    def apply(self, batch: Batch, generator: torch.Generator) -> Batch:
        mask = batch.get("mask")
        if mask is None:
            return batch
        image = batch["image"]
        n, _, h, w = image.shape
        bg = texture_batch(tuple(self.params.textures), n, (w, h), generator)
        batch["image"] = torch.where(mask[:, None] > 0.5, image, bg)
        return batch


def _shape_outlines(params, n: int, size: tuple[int, int], generator) -> tuple[torch.Tensor, ...]:
    """Outlines of up to ``max_shapes`` occluders per sample, as in the CPU ``occlude``.

    Returns vertices (n,K,24,2) edge pixels (unused ones repeat vertex 0, so
    the closing edge and the padding are degenerate), active (n,K) and colours (n,K,3).
    """
    w, h = size
    K, V = params.max_shapes, 24
    lo, hi = params.size
    count = randint((n,), 1, K + 1, generator)
    active = torch.arange(K, device=generator.device)[None] < count[:, None]
    kinds = randint((n, K), 0, len(params.shapes), generator)
    half = uniform((n, K), lo, hi, generator) * min(w, h) / 2
    cx, cy = uniform((n, K), 0.0, float(w), generator), uniform((n, K), 0.0, float(h), generator)
    colours = randint((n, K, 3), 0, 256, generator).float()
    tilt = uniform((n, K), 0.0, math.pi, generator)
    aspect = uniform((n, K), 0.2, 1.0, generator)
    circle = torch.arange(V, device=generator.device, dtype=torch.float64) * (2 * math.pi / V)

    # polygon: 3..7 sorted random angles and radii; the rest padded
    m = randint((n, K), 3, 8, generator)
    used = torch.arange(V, device=generator.device)[None, None] < m[..., None]
    theta_p = torch.where(used, uniform((n, K, V), 0.0, 2 * math.pi, generator), math.inf).sort(-1).values
    theta_p = torch.where(used, theta_p, 0.0)
    radius_p = half[..., None] * uniform((n, K, V), 0.4, 1.0, generator)
    # ellipse: 24 points of the ellipse with axes (half·aspect, half)
    a = aspect[..., None]
    theta_e = circle.expand(n, K, V)
    radius_e = half[..., None] * a / torch.hypot(a * torch.cos(circle), torch.sin(circle))
    # rectangle: the corners of a (side × aspect·side) box
    corner = torch.atan(aspect)[..., None]
    base = constant((0.0, math.pi, math.pi, 2 * math.pi), generator.device)
    sign = constant((1.0, -1.0, 1.0, -1.0), generator.device)
    theta_r = F.pad(base + sign * corner, (0, V - 4))
    radius_r = F.pad(
        (half * torch.hypot(torch.ones_like(aspect), aspect))[..., None].expand(n, K, 4), (0, V - 4)
    )
    used_r = torch.arange(V, device=generator.device)[None, None] < 4

    names = list(params.shapes)
    pick = {kind: kinds == names.index(kind) for kind in names}
    theta, radius, valid = theta_e, radius_e, torch.ones_like(used)
    for kind, th, rad, ok in (("polygon", theta_p, radius_p, used), ("rectangle", theta_r, radius_r, used_r)):
        if kind in pick:
            sel = pick[kind][..., None]
            theta, radius = torch.where(sel, th, theta), torch.where(sel, rad, radius)
            valid = torch.where(sel, ok.expand_as(valid), valid)
    phi = theta + tilt[..., None]
    # OpenCV's fillPoly, which the CPU occluder uses, also paints every pixel its outline
    # touches: about half a pixel more all round than sampling pixel centres. Grown by as
    # much, a batched shape covers as many pixels (this matters for the small shapes).
    radius = radius + 0.5
    verts = torch.stack(
        [cx[..., None] + radius * torch.cos(phi), cy[..., None] + radius * torch.sin(phi)], -1
    )
    verts = torch.where(valid[..., None], verts, verts[:, :, :1])
    return verts.float(), active, colours


def fill_polygons(verts: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """(n,K,S_y,S_x) bool: pixel centres inside each closed polygon (n,K,V,2), even-odd rule.

    The crossing test is separable: whether an edge spans a row and where it
    crosses it depend on the row only, so the full-resolution work is one
    comparison per edge.
    """
    xs, ys = pixel_centres(size, verts.device)
    x0, y0 = verts[..., 0], verts[..., 1]
    x1, y1 = verts.roll(-1, dims=2)[..., 0], verts.roll(-1, dims=2)[..., 1]
    inside = torch.zeros(*verts.shape[:2], size[1], size[0], dtype=torch.bool, device=verts.device)
    for e in range(verts.shape[2]):
        ya, yb, xa, xb = y0[..., e, None], y1[..., e, None], x0[..., e, None], x1[..., e, None]
        spans = (ya > ys) != (yb > ys)  # (n,K,H)
        dy = torch.where(spans, yb - ya, torch.ones_like(ya))
        cross_x = xa + (ys - ya) * (xb - xa) / dy
        inside ^= spans[..., None] & (xs < cross_x[..., None])
    return inside


class BatchOcclude(BatchAugmenter):
    """1..max_shapes random filled shapes (rectangles, ellipses, polygons); the mask is cleared under them."""

    name = "occlude"
    commutes_with_geometry = True

    def apply(self, batch: Batch, generator: torch.Generator) -> Batch:
        image = batch["image"]
        n, _, h, w = image.shape
        verts, active, colours = _shape_outlines(self.params, n, (w, h), generator)
        covered = fill_polygons(verts, (w, h)) & active[..., None, None]  # (n,K,H,W)
        for k in range(covered.shape[1]):  # later shapes over earlier ones
            image = torch.where(covered[:, k, None], colours[:, k, :, None, None], image)
        batch["image"] = image
        if batch.get("mask") is not None:
            batch["mask"] = batch["mask"] * (~covered.any(1)).to(batch["mask"].dtype)
        return batch


def hue_rotation(turns: torch.Tensor) -> torch.Tensor:
    """(n,3,3) rotations of RGB about the grey axis by ``turns``·360° (the CPU ``hue_rotation``)."""
    axis = constant(_GREY, turns.device)
    c, s = torch.cos(2 * math.pi * turns)[:, None, None], torch.sin(2 * math.pi * turns)[:, None, None]
    cross = torch.zeros(3, 3, dtype=torch.float64, device=turns.device)
    cross[0, 1], cross[0, 2], cross[1, 2] = -axis[2], axis[1], -axis[0]
    cross = cross - cross.T
    I3 = torch.eye(3, dtype=torch.float64, device=turns.device)
    return c * I3 + s * cross + (1 - c) * torch.outer(axis, axis)


def colour_jitter(
    image: torch.Tensor, b: torch.Tensor, c: torch.Tensor, s: torch.Tensor, hue: torch.Tensor
) -> torch.Tensor:
    """Brightness ``b``, contrast ``c``, saturation ``s`` and hue ``hue`` (turns), each (n,), on (n,3,H,W).

    The CPU ``color``'s matrix: ``x' = H·c·b·(s·I + (1-s)·1wᵀ)·x + (1-c)·b·m``
    (w: luma weights, m: the image's mean luma), clamped to 0..255.
    """
    n, dev = image.shape[0], image.device
    luma = constant(_LUMA, dev)
    mean_luma = (image.mean(dim=(2, 3), dtype=torch.float64) * luma).sum(-1)
    I3 = torch.eye(3, dtype=torch.float64, device=dev)
    to_grey = torch.outer(torch.ones(3, dtype=torch.float64, device=dev), luma)
    mix = s[:, None, None] * I3 + (1 - s)[:, None, None] * to_grey
    matrix = (c * b)[:, None, None] * (hue_rotation(hue) @ mix)
    bias = ((1 - c) * b * mean_luma)[:, None].expand(n, 3)
    # Three multiply-adds per output channel, not an einsum: a matrix product would run in TF32
    # on GPUs where the run enables it (0.1 of a grey level off).
    m = matrix.float()[:, :, :, None, None]  # (n,3,3,1,1)
    out = m[:, :, 0] * image[:, None, 0] + m[:, :, 1] * image[:, None, 1] + m[:, :, 2] * image[:, None, 2]
    return (out + bias.float()[:, :, None, None]).clamp(0.0, 255.0)


class BatchColor(BatchAugmenter):
    """Brightness, contrast, saturation and hue as one 3×4 matrix per sample (the CPU ``color``)."""

    name = "color"
    commutes_with_geometry = True

    def apply(self, batch: Batch, generator: torch.Generator) -> Batch:
        p = self.params
        n, dev = batch["image"].shape[0], batch["image"].device
        spread = constant((p.brightness, p.contrast, p.saturation), dev)
        b, c, s = uniform((n, 3), 1 - spread, 1 + spread, generator).unbind(-1)
        hue = uniform((n,), -p.hue, p.hue, generator)
        batch["image"] = colour_jitter(batch["image"], b, c, s, hue)
        return batch


BATCHED: dict[str, type[BatchAugmenter]] = {
    cls.name: cls for cls in (BatchRotate, BatchFlip, BatchScale, BatchBackground, BatchOcclude, BatchColor)
}
