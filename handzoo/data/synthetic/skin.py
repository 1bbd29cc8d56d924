"""Skin and object shading of the photo-like generator (synth3), in linear light.

Given the visible surface of the hand and its props (:class:`..raster.Surface`),
:func:`shade_photo` returns display colours:

* **albedo** in linear light: the back and the palm side of the hand in
  their own tones, nails, a low-frequency tone field (redder knuckles and
  blotches) and fine pore noise; props take their material's colour and
  pattern;
* **irradiance** from a key light, a fill light and a sky/ground
  environment whose colours come from the room behind the hand, with wrap
  lighting on skin (red light reaches further round) and contact shadows;
* **subsurface softness**: the skin's irradiance is blurred over the skin
  only, red further than green than blue, which turns the joints of the
  capsule model into one continuous soft surface and is what makes shaded
  skin look warm rather than grey;
* **highlights**: Blinn-Phong sheen broken up by the pore field, stronger
  on nails, and a Fresnel rim;
* a filmic tone curve to sRGB.

All noise fields are drawn per image in screen space; colours are 0..1.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from handzoo.data.synthetic.props import Materials
from handzoo.data.synthetic.raster import Surface, VisibilityBuffer, smoothstep

_GAMMA = 1.0 / 2.2
_LUT_SIZE = 4096
# Linear 0..1 (and a headroom up to 2) to display sRGB through a soft shoulder:
# highlights roll off instead of clipping flat.
_TONE_X = np.linspace(0.0, 2.0, _LUT_SIZE, dtype=np.float64)
_TONE_LUT = (
    np.clip(np.where(_TONE_X < 0.8, _TONE_X, 0.8 + 0.2 * np.tanh((_TONE_X - 0.8) / 0.2)), 0.0, 1.0) ** _GAMMA
)
_TONE_LUT = _TONE_LUT.astype(np.float32)


def to_linear(srgb: np.ndarray) -> np.ndarray:
    """sRGB 0..1 -> linear light (gamma 2.2)."""
    return np.asarray(srgb, dtype=np.float64) ** 2.2


def tone_map(linear: np.ndarray) -> np.ndarray:
    """Linear light (any shape, >= 0) -> display 0..1 through the generator's tone curve."""
    index = np.clip(linear * np.float32((_LUT_SIZE - 1) / 2.0), 0, _LUT_SIZE - 1).astype(np.intp)
    return _TONE_LUT[index]


@dataclass
class PhotoLighting:
    """One image's skin and light: sRGB albedos ``dorsal``/``palmar``/``nail`` (3,);
    unit directions toward the ``key`` and ``fill`` lights (camera frame) with their
    linear RGB intensities ``key_colour``/``fill_colour``; linear ``sky``/``ground``
    environment colours; skin ``specular`` strength, highlight exponent 2**``shininess_log2``;
    ``scatter_px`` the subsurface blur (sigma of red, pixels)."""

    dorsal: np.ndarray
    palmar: np.ndarray
    nail: np.ndarray
    key: np.ndarray
    key_colour: np.ndarray
    fill: np.ndarray
    fill_colour: np.ndarray
    sky: np.ndarray
    ground: np.ndarray
    specular: float
    shininess_log2: int
    scatter_px: float


def _field(rng: np.random.Generator, shape: tuple[int, int], cells: int) -> np.ndarray:
    """(H*W,) float32 value noise (std ~0.7) over an (H,W) box, flattened: random cells of
    about ``cells`` across the longer side, bilinear."""
    h, w = shape
    gh, gw = max(2, round(cells * h / max(h, w))), max(2, round(cells * w / max(h, w)))
    grid = rng.standard_normal((gh, gw)).astype(np.float32)
    return cv2.resize(grid, (w, h), interpolation=cv2.INTER_LINEAR).ravel()


# Red light scatters under skin and wraps furthest around the terminator.
_WRAP = np.array([[0.5], [0.25], [0.15]], dtype=np.float32)
_SCATTER_MIX = np.array([[1.0], [0.55], [0.2]], dtype=np.float32)


def _scatter(irradiance: np.ndarray, flat: np.ndarray, shape: tuple[int, int], sigma: float) -> np.ndarray:
    """The skin's irradiance (3,N) at the flat indices ``flat`` (N,) of an (H,W) box,
    blurred over the skin only (normalised by the blurred coverage): red by ``sigma``
    px, green by part of it, blue hardly (longer wavelengths travel further under skin)."""
    plane = np.zeros(shape[0] * shape[1], np.float32)
    plane[flat] = 1.0
    weight = cv2.GaussianBlur(plane.reshape(shape), (0, 0), sigma).ravel().take(flat)
    np.maximum(weight, 1e-4, out=weight)
    out = np.empty_like(irradiance)
    for c in range(3):
        plane[flat] = irradiance[c]
        out[c] = cv2.GaussianBlur(plane.reshape(shape), (0, 0), sigma).ravel().take(flat)
    out /= weight
    out -= irradiance
    out *= _SCATTER_MIX
    out += irradiance
    return out


def _column(v: np.ndarray) -> np.ndarray:
    return np.asarray(v, dtype=np.float32).reshape(3, 1)


def shade_photo(
    rng: np.random.Generator,
    s: Surface,
    vis: VisibilityBuffer,
    material: np.ndarray,
    materials: Materials,
    lighting: PhotoLighting,
) -> np.ndarray:
    """Display colours (3,N) float32 0..1 (sRGB, channels first) of the covered pixels ``s.pixels``.

    Args:
        rng: draws the tone, pore and pattern fields.
        s: the visible surface (hand and props).
        vis: its visibility buffer (for the image size).
        material: (N,) prop material index of each pixel, -1 on skin.
        materials: the props' materials.
        lighting: the image's skin tones and lights.
    """
    # Channels first throughout, (3,N): numpy is slow on an inner axis of length 3.
    f32 = np.float32
    size = vis.owner.shape[1]
    n = len(s.pixels)
    if n == 0:
        return np.zeros((3, 0), f32)
    skin = material < 0
    # Screen-space fields live on the box of the covered pixels, with a margin for the blur.
    rows, cols = np.divmod(s.pixels, size)
    pad = int(np.ceil(3 * lighting.scatter_px)) + 1
    r0, c0 = int(rows.min()) - pad, int(cols.min()) - pad
    box = (int(rows.max()) - r0 + 1 + pad, int(cols.max()) - c0 + 1 + pad)
    flat = (rows - r0) * box[1] + (cols - c0)
    cells = max(box) * 224 / size

    # Albedo (linear light).
    side = smoothstep(-0.15, 0.45, s.palmar)
    dorsal, palmar, nail = (_column(to_linear(c)) for c in (lighting.dorsal, lighting.palmar, lighting.nail))
    albedo = side * (palmar - dorsal)
    albedo += dorsal
    albedo += (nail - albedo) * s.nail
    tone = _field(rng, box, max(3, round(cells / 18))).take(flat)
    pores = _field(rng, box, max(4, round(cells / 2.5))).take(flat)
    # Blotches: darker and redder where the tone field is low.
    albedo *= f32(1.0) + f32(0.05) * tone + f32(0.02) * pores
    albedo[1:] *= f32(1.0) + f32(0.03) * np.minimum(tone, 0.0)
    props = np.flatnonzero(~skin)
    if len(props):
        m = material[props]
        pattern = _field(rng, box, int(rng.integers(4, 30))).take(flat[props])
        base = to_linear(materials.albedo).astype(f32).T[:, m]
        albedo[:, props] = base * (f32(1.0) + materials.texture.astype(f32)[m] * f32(0.3) * pattern)
    albedo *= f32(1.0) - f32(0.15) * s.crease

    # Irradiance: key (wrapped on skin), fill, sky/ground.
    nx, ny, nz = s.normal
    kx, ky, kz = (f32(v) for v in lighting.key)
    ndl = nx * kx + ny * ky + nz * kz
    irradiance = np.maximum((ndl + _WRAP) * (f32(1.0) / (f32(1.0) + _WRAP)), 0.0)
    if len(props):  # objects and cloth do not wrap light round
        irradiance[:, props] = np.maximum(ndl[props], 0.0)
    irradiance *= _column(lighting.key_colour)
    fx, fy, fz = (f32(v) for v in lighting.fill)
    irradiance += np.maximum(nx * fx + ny * fy + nz * fz, 0.0) * _column(lighting.fill_colour)
    up = f32(0.5) - f32(0.5) * ny  # camera y points down
    irradiance += up * _column(lighting.sky - lighting.ground)
    irradiance += _column(lighting.ground)
    # Contact shadows dim the light, not the skin: the scattering then softens them.
    irradiance *= f32(1.0) - f32(0.35) * s.shadow
    on_skin = np.flatnonzero(skin)
    if len(on_skin) == n:
        irradiance = _scatter(irradiance, flat, box, lighting.scatter_px)
    elif len(on_skin):
        irradiance[:, on_skin] = _scatter(irradiance[:, on_skin], flat[on_skin], box, lighting.scatter_px)
    colour = albedo
    colour *= irradiance

    # Highlights: skin sheen broken up by the pores, nails glossier, props by material.
    half = lighting.key + np.array([0.0, 0.0, -1.0])
    hx, hy, hz = (f32(v) for v in half / np.linalg.norm(half))
    ndh = np.maximum(nx * hx + ny * hy + nz * hz, 0.0)
    for _ in range(lighting.shininess_log2):
        ndh *= ndh
    strength = np.maximum(f32(1.0) + f32(0.8) * pores, 0.0)
    strength *= f32(1.0) + f32(1.5) * s.nail
    strength *= f32(lighting.specular)
    if len(props):
        strength[props] = materials.specular.astype(f32)[material[props]]
    ndh *= strength
    colour += ndh * _column(lighting.key_colour)
    rim = (f32(1.0) - np.abs(nz)) ** 4
    rim *= f32(0.25 * lighting.specular)
    colour += rim * _column(lighting.sky)
    return tone_map(colour)
