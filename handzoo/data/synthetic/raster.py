"""A small numpy rasteriser for capsules and ellipsoids with a z-buffer, and skin shading.

Rendering is deferred, in two passes:

1. :func:`rasterize` evaluates every primitive on its projected bounding box
   only (vectorised over those pixels) and keeps, per pixel, the depth and the
   index of the nearest primitive (a visibility buffer);
2. :func:`surface` recomputes normals and surface attributes once, for the
   winning primitive of each covered pixel, and :func:`shade` lights them.

Ellipsoids are ray-cast exactly (perspective rays through pixel centres).
Tapered capsules are screen-space impostors: the projected axis with a
linearly interpolated projected radius, the depth of the axis minus a
spherical bulge, and the bulge's normal. This is exact for spheres and close
for the short, nearly round phalanges, at a fraction of an exact ray cast.

Pixel (row i, column j) samples the point (j + 0.5, i + 0.5) in the pixel
convention of :func:`handzoo.geometry.project`, so a joint projected to
(u, v) lies in pixel (floor(v), floor(u)).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from handzoo.data.synthetic.primitives import Primitives

NEAR = 0.05  # metres: primitives closer to the camera are not drawn


@dataclass
class VisibilityBuffer:
    """``depth`` (S,S) float32 metres of the nearest surface (inf where empty) and
    ``owner`` (S,S) int16 index of its primitive: capsules 0..N-1, then ellipsoids
    N..N+M-1; -1 where empty."""

    depth: np.ndarray
    owner: np.ndarray


def _box(lo_u: float, lo_v: float, hi_u: float, hi_v: float, size: int) -> tuple[slice, slice] | None:
    x0, y0 = max(int(np.floor(lo_u)), 0), max(int(np.floor(lo_v)), 0)
    x1, y1 = min(int(np.ceil(hi_u)) + 1, size), min(int(np.ceil(hi_v)) + 1, size)
    if x0 >= x1 or y0 >= y1:
        return None
    return slice(y0, y1), slice(x0, x1)


def smoothstep(lo: float, hi: float, x: np.ndarray) -> np.ndarray:
    t = np.clip((x - lo) * (1.0 / (hi - lo)), 0.0, 1.0)
    return t * t * (3.0 - 2.0 * t)


@dataclass
class _ProjectedCapsules:
    ua: np.ndarray  # (N,) pixel position of end a
    va: np.ndarray
    du: np.ndarray  # (N,) pixel offset from a to b
    dv: np.ndarray
    rho_a: np.ndarray  # (N,) projected radius at a
    drho: np.ndarray
    za: np.ndarray  # (N,) depth of the axis at a
    dz: np.ndarray
    ra: np.ndarray  # (N,) metric radius at a
    dr: np.ndarray
    visible: np.ndarray  # (N,) bool: both ends in front of the near plane

    @classmethod
    def of(cls, prims: Primitives, K: np.ndarray) -> _ProjectedCapsules:
        fx, fy, cx, cy = K[0, 0], K[1, 1], K[0, 2], K[1, 2]
        a, b = prims.cap_a, prims.cap_b
        visible = (a[:, 2] > NEAR + prims.cap_ra) & (b[:, 2] > NEAR + prims.cap_rb)
        za, zb = np.maximum(a[:, 2], NEAR), np.maximum(b[:, 2], NEAR)
        ua, va = fx * a[:, 0] / za + cx, fy * a[:, 1] / za + cy
        ub, vb = fx * b[:, 0] / zb + cx, fy * b[:, 1] / zb + cy
        rho_a, rho_b = fx * prims.cap_ra / za, fx * prims.cap_rb / zb
        return cls(ua, va, ub - ua, vb - va, rho_a, rho_b - rho_a, a[:, 2], b[:, 2] - a[:, 2],
                   prims.cap_ra, prims.cap_rb - prims.cap_ra, visible)


def _capsule_geometry(xs, ys, du, dv, rho_a, drho):
    """Axial parameter t, offsets from the axis and projected radius at pixel offsets
    (xs, ys) from end a; broadcasts over arrays of pixels and of capsules."""
    len2 = np.maximum(du * du + dv * dv, 1e-6)
    t = np.clip((xs * du + ys * dv) / len2, 0.0, 1.0)
    ex = xs - t * du
    ey = ys - t * dv
    rho = rho_a + t * drho
    return t, ex, ey, rho


def _draw_capsules(vis: VisibilityBuffer, caps: _ProjectedCapsules, size: int, focal: float) -> None:
    f32 = np.float32
    columns = (caps.ua, caps.va, caps.du, caps.dv, caps.rho_a, caps.drho, caps.za, caps.dz)
    rows = zip(*(c.tolist() for c in columns), strict=True)  # python floats: fast scalar maths
    for i, (ua, va, du, dv, rho_a, drho, za, dz) in enumerate(rows):
        if not caps.visible[i]:
            continue
        rho_b = rho_a + drho
        x0 = max(int(np.floor(min(ua - rho_a, ua + du - rho_b))), 0)
        y0 = max(int(np.floor(min(va - rho_a, va + dv - rho_b))), 0)
        x1 = min(int(max(ua + rho_a, ua + du + rho_b)) + 2, size)
        y1 = min(int(max(va + rho_a, va + dv + rho_b)) + 2, size)
        if x0 >= x1 or y0 >= y1:
            continue
        sl = slice(y0, y1), slice(x0, x1)
        xs = np.arange(x0, x1, dtype=f32) + f32(0.5 - ua)
        ys = (np.arange(y0, y1, dtype=f32) + f32(0.5 - va))[:, None]
        len2 = max(du * du + dv * dv, 1e-6)
        # With p the pixel relative to end a: s = p.ab is separable (one full-size add),
        # t = clip(s / |ab|^2) and the squared distance to the axis point is
        # |p|^2 - 2 t s + t^2 |ab|^2 = |p|^2 + t (t |ab|^2 - 2 s).
        s = ys * f32(dv) + xs * f32(du)
        t = s * f32(1.0 / len2)
        np.maximum(t, 0.0, out=t)
        np.minimum(t, 1.0, out=t)
        d2 = t * f32(len2)
        d2 -= s
        d2 -= s
        d2 *= t
        d2 += ys * ys + xs * xs
        h2 = t * f32(drho)
        h2 += f32(rho_a)
        h2 *= h2
        h2 -= d2  # rho(t)^2 - d^2: > 0 inside the projected capsule
        inside = h2 > 0.0
        np.maximum(h2, 0.0, out=h2)
        bulge = np.sqrt(h2, out=h2)  # pixels; times metres per pixel at the axis depth
        bulge *= f32((za + 0.5 * dz) / focal)
        depth = t * f32(dz)
        depth += f32(za)
        depth -= bulge
        win = inside & (depth < vis.depth[sl])
        np.copyto(vis.depth[sl], depth, where=win)
        np.copyto(vis.owner[sl], i, where=win, casting="unsafe")


def _ellipsoid_forms(prims: Primitives) -> np.ndarray:
    """(M,3,3) matrices Q with (x - c)^T Q (x - c) = 1 on the surface of each ellipsoid."""
    R, s = prims.ell_rot, prims.ell_axes
    return np.einsum("mij,mj,mkj->mik", R, 1.0 / s**2, R)


def _ellipsoid_box(c: np.ndarray, shape: np.ndarray, K: np.ndarray) -> np.ndarray | None:
    """Exact pixel box (u0, v0, u1, v1) of the ellipsoid {c + x : x^T shape^-1 x <= 1}.

    The image line u = const is the plane n.x = 0 with n = (fx, 0, cx - u); it
    is tangent when (n.c)^2 = n^T shape n, a quadratic in u (same for v).
    None when the ellipsoid reaches behind the near plane.
    """
    if c[2] - np.sqrt(shape[2, 2]) <= NEAR:
        return None
    A = np.outer(c, c) - shape
    box = []
    for f, p, k in ((K[0, 0], K[0, 2], 0), (K[1, 1], K[1, 2], 1)):
        a2 = A[2, 2]
        a1 = -(f * A[k, 2] + p * a2)
        a0 = f * f * A[k, k] + 2.0 * f * p * A[k, 2] + p * p * a2
        root = np.sqrt(max(a1 * a1 - a2 * a0, 0.0))
        box.append(((-a1 - root) / a2, (-a1 + root) / a2))
    return np.array([box[0][0], box[1][0], box[0][1], box[1][1]])


def _draw_ellipsoids(vis: VisibilityBuffer, prims: Primitives, K: np.ndarray, size: int) -> None:
    fx, fy, cx, cy = K[0, 0], K[1, 1], K[0, 2], K[1, 2]
    f32 = np.float32
    forms = _ellipsoid_forms(prims)
    shapes = np.einsum("mij,mj,mkj->mik", prims.ell_rot, prims.ell_axes**2, prims.ell_rot)
    first = len(prims.cap_a)
    for i in range(len(prims.ell_centre)):
        c, Q = prims.ell_centre[i], forms[i]
        box = _ellipsoid_box(c, shapes[i], K)
        if box is None:
            continue
        sl = _box(box[0] - 0.5, box[1] - 0.5, box[2] + 0.5, box[3] + 0.5, size)
        if sl is None:
            continue
        # Ray through a pixel centre: t d with d = (x, y, 1), x = (u - cx)/fx, y = (v - cy)/fy,
        # so t is the depth. On the surface: t^2 dQd - 2 t dQc + (cQc - 1) = 0, and dQd, dQc
        # split into terms in x, in y, and one x*y term.
        x = (np.arange(sl[1].start, sl[1].stop, dtype=f32) + f32(0.5 - cx)) * f32(1.0 / fx)
        y = ((np.arange(sl[0].start, sl[0].stop, dtype=f32) + f32(0.5 - cy)) * f32(1.0 / fy))
        y = y[:, None]
        Qc = Q @ c
        qa = (y * f32(2.0 * Q[0, 1])) * x
        qa += x * (x * f32(Q[0, 0]) + f32(2.0 * Q[0, 2]))
        qa += y * (y * f32(Q[1, 1]) + f32(2.0 * Q[1, 2])) + f32(Q[2, 2])
        qb = x * f32(Qc[0]) + (y * f32(Qc[1]) + f32(Qc[2]))
        disc = qa * f32(c @ Qc - 1.0)
        np.subtract(qb * qb, disc, out=disc)
        inside = disc > 0.0
        np.maximum(disc, 0.0, out=disc)
        depth = np.sqrt(disc, out=disc)
        np.subtract(qb, depth, out=depth)
        depth /= qa
        win = inside & (depth < vis.depth[sl])
        np.copyto(vis.depth[sl], depth, where=win)
        np.copyto(vis.owner[sl], first + i, where=win, casting="unsafe")


def rasterize(prims: Primitives, K: np.ndarray, size: int) -> VisibilityBuffer:
    """Depth and nearest primitive of every pixel of a (size,size) image of ``prims``
    (camera frame, metres) seen through intrinsics ``K`` (3,3)."""
    vis = VisibilityBuffer(
        depth=np.full((size, size), np.inf, dtype=np.float32),
        owner=np.full((size, size), -1, dtype=np.int16),
    )
    _draw_ellipsoids(vis, prims, K, size)
    _draw_capsules(vis, _ProjectedCapsules.of(prims, K), size, float(K[0, 0]))
    return vis


def part_labels(prims: Primitives, vis: VisibilityBuffer) -> np.ndarray:
    """(S,S) uint8 part label of every pixel (0 where no primitive is visible)."""
    lut = np.concatenate([[0], prims.cap_label, prims.ell_label]).astype(np.uint8)
    return lut[vis.owner + 1]


def occlusion_shadow(
    vis: VisibilityBuffer, rows: np.ndarray, cols: np.ndarray, reach: int, depth_gap: float = 0.004
) -> np.ndarray:
    """(N,) float32 0..1 at the covered pixels (``rows``, ``cols``) (N,) each: how much a
    surface at least ``depth_gap`` metres nearer lies within ``reach`` pixels.

    A cheap stand-in for ambient occlusion and contact shadows: a finger lying
    over the palm or over another finger leaves a dark rim on what is behind it,
    which keeps overlapping fingers apart in the picture.
    """
    if len(rows) == 0:
        return np.zeros(0, dtype=np.float32)
    # Only the hand's box (plus the reach) can hold a nearer neighbour.
    r0, c0 = max(int(rows.min()) - reach, 0), max(int(cols.min()) - reach, 0)
    depth = vis.depth[r0 : int(rows.max()) + reach + 1, c0 : int(cols.max()) + reach + 1]
    front = depth.copy()
    for step in range(1, reach + 1):
        np.minimum(front[step:], depth[:-step], out=front[step:])
        np.minimum(front[:-step], depth[step:], out=front[:-step])
        np.minimum(front[:, step:], depth[:, :-step], out=front[:, step:])
        np.minimum(front[:, :-step], depth[:, step:], out=front[:, :-step])
    at = (rows - r0, cols - c0)
    gap = depth[at] - front[at]
    return np.clip((gap - depth_gap) * (1.0 / 0.01), 0.0, 1.0)


@dataclass
class Surface:
    """Attributes of the N covered pixels (flat indices ``pixels``, (N,) each):
    unit camera-frame ``normal`` (3,N), ``palmar`` cosine between the normal and the
    part's palmar direction, ``nail`` 0..1 and ``crease`` 0..1 coverage, ``shadow``
    0..1 darkening by a nearer surface close by (see :func:`occlusion_shadow`)."""

    pixels: np.ndarray
    normal: np.ndarray
    palmar: np.ndarray
    nail: np.ndarray
    crease: np.ndarray
    shadow: np.ndarray


def surface(prims: Primitives, K: np.ndarray, vis: VisibilityBuffer) -> Surface:
    """Normals and skin features of the visible surface in ``vis`` (deferred, once per pixel)."""
    f32 = np.float32
    size = vis.owner.shape[1]
    rows, cols = np.nonzero(vis.owner >= 0)
    pixels = rows * size + cols
    owner = vis.owner[rows, cols].astype(np.intp)
    u = cols.astype(f32) + f32(0.5)
    v = rows.astype(f32) + f32(0.5)
    n_caps = len(prims.cap_a)
    normal = np.empty((3, len(pixels)), dtype=f32)
    palmar = np.empty(len(pixels), dtype=f32)
    nail = np.zeros(len(pixels), dtype=f32)
    crease = np.zeros(len(pixels), dtype=f32)

    is_cap = owner < n_caps
    on = np.flatnonzero(is_cap)
    if len(on):
        caps = _ProjectedCapsules.of(prims, K)
        axis = prims.cap_b - prims.cap_a
        axis /= np.maximum(np.linalg.norm(axis, axis=1, keepdims=True), 1e-9)
        table = np.concatenate([
            np.stack([caps.ua, caps.va, caps.du, caps.dv,
                      1.0 / np.maximum(caps.du**2 + caps.dv**2, 1e-6), caps.rho_a, caps.drho,
                      prims.cap_crease, prims.cap_nail]),
            prims.cap_palmar.T, axis.T, prims.cap_axis_x.T,
        ]).astype(f32)
        (ua, va, du, dv, inv_len2, rho_a, drho, has_crease, has_nail,
         p0, p1, p2, a0, a1, a2, x0, x1, x2) = np.take(table, owner[on], axis=1)
        xs = u[on] - ua
        ys = v[on] - va
        t = np.clip((xs * du + ys * dv) * inv_len2, 0.0, 1.0)
        rho = t * drho + rho_a
        nx = (xs - t * du) / rho
        ny = (ys - t * dv) / rho
        nz = -np.sqrt(np.maximum(1.0 - nx * nx - ny * ny, 0.0))
        normal[:, on] = nx, ny, nz
        cos_palmar = nx * p0 + ny * p1 + nz * p2
        palmar[on] = cos_palmar
        # Flexion creases where a phalanx leaves its joint, strongest on the palm side.
        band = 1.0 - smoothstep(0.02, 0.06, np.abs(t - 0.1))
        crease[on] = band * has_crease * smoothstep(0.0, 0.6, cos_palmar)
        k = np.flatnonzero(has_nail)
        if len(k):
            # The nail: dorsal side of the distal phalanx, short of the very tip, and
            # bounded on both sides of the finger.
            nx, ny, nz = nx[k], ny[k], nz[k]
            along = nx * a0[k] + ny * a1[k] + nz * a2[k]
            side = np.abs(nx * x0[k] + ny * x1[k] + nz * x2[k])
            nail[on[k]] = (
                smoothstep(0.35, 0.55, -cos_palmar[k])
                * smoothstep(0.3, 0.5, t[k])
                * (1.0 - smoothstep(0.55, 0.75, along))
                * (1.0 - smoothstep(0.6, 0.75, side))
            )

    on = np.flatnonzero(~is_cap)
    if len(on):
        # The normal of (x - c)^T Q (x - c) = 1 at the hit point x is Q (x - c).
        table = np.concatenate([
            _ellipsoid_forms(prims).reshape(-1, 9).T, prims.ell_centre.T, prims.ell_palmar.T
        ]).astype(f32)
        q00, q01, q02, _, q11, q12, _, _, q22, c0, c1, c2, p0, p1, p2 = np.take(
            table, owner[on] - n_caps, axis=1
        )
        depth = vis.depth.ravel()[pixels[on]]
        x = (u[on] - f32(K[0, 2])) * f32(1.0 / K[0, 0]) * depth - c0
        y = (v[on] - f32(K[1, 2])) * f32(1.0 / K[1, 1]) * depth - c1
        z = depth - c2
        nx = q00 * x + q01 * y + q02 * z
        ny = q01 * x + q11 * y + q12 * z
        nz = q02 * x + q12 * y + q22 * z
        inv = 1.0 / np.sqrt(nx * nx + ny * ny + nz * nz + f32(1e-12))
        nx *= inv
        ny *= inv
        nz *= inv
        normal[:, on] = nx, ny, nz
        palmar[on] = nx * p0 + ny * p1 + nz * p2
    reach = max(1, round(size / 100))
    shadow = occlusion_shadow(vis, rows, cols, reach)
    return Surface(pixels=pixels, normal=normal, palmar=palmar, nail=nail, crease=crease,
                   shadow=shadow)


@dataclass
class Lighting:
    """Skin colours and one directional light (colours RGB 0..1).

    ``dorsal``/``palmar`` skin albedo of the back and of the palm side,
    ``nail`` nail albedo, ``light`` unit direction toward the light (camera
    frame), ``ambient``, ``diffuse``, ``specular`` strengths, ``shininess``
    (the highlight exponent is 2**shininess_log2).
    """

    dorsal: np.ndarray
    palmar: np.ndarray
    nail: np.ndarray
    light: np.ndarray
    ambient: float
    diffuse: float
    specular: float
    shininess_log2: int


# Light scattered under the skin wraps further around for red than for blue,
# which is what makes shadowed skin look warm rather than grey.
_WRAP = np.array([0.45, 0.2, 0.12], dtype=np.float32)


def shade(s: Surface, lighting: Lighting) -> np.ndarray:
    """Colours (N,3) float32 0..1 of the surface points ``s``."""
    f32 = np.float32
    side = smoothstep(-0.15, 0.45, s.palmar)[:, None]
    albedo = (lighting.palmar - lighting.dorsal) * side + lighting.dorsal
    albedo += (lighting.nail - albedo) * s.nail[:, None]
    albedo *= (1.0 - f32(0.35) * s.crease - f32(0.45) * s.shadow)[:, None]
    nx, ny, nz = s.normal
    lx, ly, lz = (f32(v) for v in lighting.light)
    ndl = nx * lx + ny * ly + nz * lz
    diffuse = np.clip((ndl[:, None] + _WRAP) * (1.0 / (1.0 + _WRAP)), 0.0, 1.0)
    diffuse *= f32(lighting.diffuse)
    # A soft sky term: surfaces facing up (-y) get a little more ambient light.
    diffuse += (f32(0.8 * lighting.ambient) - f32(0.2 * lighting.ambient) * ny)[:, None]
    albedo *= diffuse
    # Blinn-Phong highlight (view direction -z), stronger on the nails.
    half = lighting.light + np.array([0.0, 0.0, -1.0], dtype=f32)
    hx, hy, hz = (f32(v) for v in half / np.linalg.norm(half))
    ndh = np.maximum(nx * hx + ny * hy + nz * hz, 0.0)
    for _ in range(lighting.shininess_log2):
        ndh *= ndh
    ndh *= (s.nail * f32(2.0) + f32(1.0)) * f32(lighting.specular)
    albedo += ndh[:, None]
    return albedo
