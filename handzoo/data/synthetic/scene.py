"""One synth2 sample: a random hand, posed, lit, placed in front of a random background."""

from __future__ import annotations

import numpy as np
from PIL import Image

from handzoo.data.synthetic.background import draw_occluders, random_skin_tone, sample_background
from handzoo.data.synthetic.camera import (
    FOCAL_RANGE,
    MIN_DISTANCE,
    REFERENCE_SIZE,
    place_hand,
    sample_intrinsics,
    silhouette_box,
)
from handzoo.data.synthetic.pose_prior import sample_pose, sample_rotation
from handzoo.data.synthetic.primitives import (
    OCCLUDER,
    Primitives,
    build_hand,
    forearm_direction,
    hand_mask,
)
from handzoo.data.synthetic.raster import Lighting, part_labels, rasterize, shade, surface
from handzoo.data.synthetic.skeleton import HandShape, forward_kinematics, sample_shape
from handzoo.geometry import project

FILL_RANGE = (0.65, 0.82)
"""Longer side of the hand's box (forearm excluded) as a fraction of the image side."""


def sample_lighting(rng: np.random.Generator) -> Lighting:
    """Skin tone (palms lighter, more so for dark skin), nails and a light from the camera side."""
    dorsal = random_skin_tone(rng)
    darkness = float(np.clip(1.0 - dorsal.mean() / 0.8, 0.0, 1.0))
    # Palms are pinker than the back of the hand, and much lighter on dark skin.
    palm_target = np.array([0.92, 0.64, 0.60])
    palmar = dorsal + (palm_target - dorsal) * (0.45 + 0.4 * darkness)
    nail = dorsal + (np.array([0.96, 0.84, 0.82]) - dorsal) * 0.65
    light = np.array([rng.normal(0.0, 0.5), rng.normal(-0.4, 0.4), -1.0])
    # Ambient + diffuse peaks near 1, so the lightest skin only just saturates.
    total, ambient_share = rng.uniform(0.8, 1.05), rng.uniform(0.25, 0.45)
    return Lighting(
        dorsal=dorsal.astype(np.float32),
        palmar=palmar.astype(np.float32),
        nail=nail.astype(np.float32),
        light=(light / np.linalg.norm(light)).astype(np.float32),
        ambient=float(total * ambient_share),
        diffuse=float(total * (1.0 - ambient_share)),
        specular=float(rng.uniform(0.02, 0.12)),
        shininess_log2=int(rng.integers(3, 6)),
    )


def sample_forearm(rng: np.random.Generator, rotation: np.ndarray, prob: float,
                   lengths: tuple[float, float] = (0.06, 0.25), attempts: int = 1):
    """(length m, wrist flexion rad, deviation rad) of a forearm leaving the wrist of a hand
    turned by ``rotation`` (3,3), with chance ``prob``; None without one, also when every
    one of ``attempts`` wrist bends would point it at the camera (it would hide the hand)."""
    if rng.random() >= prob:
        return None
    length = float(rng.uniform(*lengths))
    for _ in range(attempts):
        flexion = float(rng.normal(0.0, np.deg2rad(25.0)))
        deviation = float(rng.normal(0.0, np.deg2rad(10.0)))
        direction = -rotation @ forearm_direction(flexion, deviation)[:, 1]  # camera axes
        if direction[2] >= -0.4:  # an arm pointing at the lens would hide the hand
            return length, flexion, deviation
    return None


def labelled_sample(rgb: np.ndarray, parts: np.ndarray, joints3d: np.ndarray, K: np.ndarray,
                    angles: np.ndarray, rotation: np.ndarray) -> dict[str, np.ndarray]:
    """The sample dict every generator version returns: the picture ``rgb`` (S,S,3) uint8 and
    its exact labels, the mask made from ``parts`` and ``joints2d`` projected from ``joints3d``."""
    return {
        "image": rgb,
        "mask": hand_mask(parts),
        "parts": parts,
        "joints3d": joints3d.astype(np.float32),
        "joints2d": project(joints3d, K).astype(np.float32),
        "K": K.astype(np.float32),
        "angles": angles.astype(np.float32),
        "rotation": rotation.astype(np.float32),
    }


def frame_hand(rng: np.random.Generator, hand: Primitives, rotation: np.ndarray, size: int,
               fill: float, K: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Intrinsics K (3,3) and the translation (3,) m that frame ``hand`` (hand frame) turned by
    ``rotation``: its box's longer side ``fill`` x ``size`` px near the centre of the
    picture (drawn from ``rng``), never closer than :data:`MIN_DISTANCE` (the focal length
    of ``K``, a copy, is lengthened instead)."""
    K = np.array(K, dtype=np.float64)
    slack = (1.0 - fill) * size * 0.25
    centre = np.array([size / 2.0, size / 2.0]) + rng.uniform(-slack, slack, 2)
    rotated = hand.transformed(rotation, np.zeros(3))
    translation = place_hand(rotated, K, size, fill, centre)
    distance = translation[2] + rotated.ell_centre[:, 2].mean()
    if distance < MIN_DISTANCE:  # too close for a believable perspective: zoom in instead
        K[:2, :2] *= min(MIN_DISTANCE / distance, FOCAL_RANGE[1] * size / REFERENCE_SIZE / K[0, 0])
        translation = place_hand(rotated, K, size, fill, centre)
    return K, translation


def sample_hand(
    rng: np.random.Generator,
    image_size: int = 224,
    *,
    angles: np.ndarray | None = None,
    rotation: np.ndarray | None = None,
    shape: HandShape | None = None,
    fill: float | None = None,
    occluder_prob: float = 0.2,
    forearm_prob: float = 0.85,
) -> dict[str, np.ndarray]:
    """Render one random right hand.

    Args:
        rng: the only source of randomness (same generator state -> same sample).
        image_size: side S of the square image in pixels (224 like FreiHAND).
        angles: optional (5,3,3) articulation in radians (see
            :mod:`handzoo.data.synthetic.skeleton`); drawn from the pose prior if None.
        rotation: optional (3,3) orientation of the hand frame in the camera
            frame; drawn by :func:`sample_rotation` if None.
        shape: optional anatomy; drawn by :func:`sample_shape` if None.
        fill: optional longer side of the hand's box over S; U(0.65, 0.82) if None.
        occluder_prob: chance of 1-2 shapes drawn in front of the hand.
        forearm_prob: chance of a forearm leaving the wrist.

    Returns:
        A dict with
        ``image`` (S,S,3) uint8 RGB;
        ``mask`` (S,S) uint8, 255 on visible hand and forearm skin, else 0;
        ``parts`` (S,S) uint8 part labels (``PART_NAMES``: 0 background, 1 palm,
        2-6 thumb..little, 7 forearm, 8 occluder);
        ``joints3d`` (21,3) float32 metres, camera frame, canonical order;
        ``joints2d`` (21,2) float32 pixels, the projection of ``joints3d`` by ``K``;
        ``K`` (3,3) float32 intrinsics;
        ``angles`` (5,3,3) float32 radians; ``rotation`` (3,3) float32 hand -> camera.
    """
    size = int(image_size)
    shape = sample_shape(rng) if shape is None else shape
    angles = sample_pose(rng) if angles is None else np.asarray(angles, dtype=np.float64)
    rotation = sample_rotation(rng) if rotation is None else np.asarray(rotation, dtype=np.float64)
    joints, frames = forward_kinematics(angles, shape)
    forearm = sample_forearm(rng, rotation, forearm_prob)
    hand = build_hand(joints, frames, shape, forearm)

    K = sample_intrinsics(rng, size)
    fill = float(rng.uniform(*FILL_RANGE)) if fill is None else float(fill)
    K, translation = frame_hand(rng, hand, rotation, size, fill, K)
    prims = hand.transformed(rotation, translation)
    joints3d = joints @ rotation.T + translation

    vis = rasterize(prims, K, size)
    parts = part_labels(prims, vis)
    skin = surface(prims, K, vis)
    lighting = sample_lighting(rng)
    # Camera response (white balance and exposure) applies to the hand and the background.
    gain = rng.normal(1.0, 0.05, 3) * rng.uniform(0.85, 1.15)
    colour = shade(skin, lighting) * (gain * 255.0).astype(np.float32)
    background = sample_background(rng, size, gain)
    rgb = background.reshape(-1, 3)
    rgb[skin.pixels] = np.clip(colour + 0.5, 0.0, 255.0).astype(np.uint8)
    rgb = rgb.reshape(size, size, 3)

    if rng.random() < occluder_prob:
        picture = Image.fromarray(rgb)
        covered = draw_occluders(rng, picture, silhouette_box(prims, K), int(rng.integers(1, 3)))
        rgb = np.array(picture)
        parts[covered] = OCCLUDER
    if rng.random() < 0.35:  # sensor noise, the same on all channels (luminance)
        amplitude = int(rng.integers(2, 7))
        noise = rng.integers(-amplitude, amplitude + 1, (size, size, 1), dtype=np.int16)
        rgb = (rgb + noise).clip(0, 255).astype(np.uint8)
    if rng.random() < 0.2:  # slight softness of the whole picture: resample through a smaller size
        small = max(8, int(size * rng.uniform(0.6, 0.9)))
        picture = Image.fromarray(rgb).resize((small, small), Image.BILINEAR)
        rgb = np.asarray(picture.resize((size, size), Image.BILINEAR))

    return labelled_sample(rgb, parts, joints3d, K, angles, rotation)
