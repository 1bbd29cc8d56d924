"""One sample of the photo-like generator (version synth3): a hand as a camera sees it.

The hand's skeleton, anatomy and capsule model are those of synth2
(:mod:`.skeleton`, :mod:`.primitives`); what changes is what a photograph
has and synth2 lacked:

* **skin** shaded in linear light with subsurface softness, which makes the
  segments one continuous surface, tone and pore texture, sheen and a rim
  (:mod:`.skin`), lit by a key and a fill light and by the room around it;
* **a forearm** nearly always, long enough to leave the picture, often in a
  **sleeve**;
* **objects**: held in a power grip (a handle or bottle, a ball or fruit;
  the pose closes around it) or between the camera and the hand, all in the
  same z-buffer as the hand (:mod:`.props`);
* **rooms** behind the hand, out of focus (:mod:`.rooms`);
* **views** that favour the palm or the back over edge-on (:func:`.pose_prior.sample_view`);
* a camera: white balance and exposure, slight softness (which also
  anti-aliases the edges), vignetting and sensor noise.

Labels stay exact: ``joints2d`` is the projection of ``joints3d``, the mask
is the visible skin of the z-buffer (objects and sleeves in front of the
hand are not hand), and part labels follow the depth order.
"""

from __future__ import annotations

import cv2
import numpy as np

from handzoo.data.synthetic.background import random_skin_tone
from handzoo.data.synthetic.camera import sample_intrinsics
from handzoo.data.synthetic.pose_prior import GRIPS, grip_pose, sample_pose, sample_view
from handzoo.data.synthetic.primitives import FOREARM, Primitives, build_hand
from handzoo.data.synthetic.props import (
    Materials,
    Props,
    cloth_colour,
    held_object,
    object_colour,
    object_in_front,
    sleeve,
)
from handzoo.data.synthetic.raster import part_labels, rasterize, surface
from handzoo.data.synthetic.rooms import sample_room
from handzoo.data.synthetic.scene import frame_hand, labelled_sample, sample_forearm
from handzoo.data.synthetic.skeleton import HandShape, forward_kinematics, sample_shape
from handzoo.data.synthetic.skin import PhotoLighting, shade_photo, to_linear

FILL_RANGE = (0.5, 0.72)
"""Longer side of the hand's box (forearm excluded) over the image side: a little
more context than synth2's (0.65, 0.82), as FreiHAND's crops have."""
SLEEVE_PROB = 0.6
"""Chance that a forearm wears a sleeve."""


def _unit(v: np.ndarray) -> np.ndarray:
    return v / np.linalg.norm(v)


def sample_photo_lighting(
    rng: np.random.Generator, background: np.ndarray, px_per_mm: float
) -> PhotoLighting:
    """Skin tones and lights of one picture; the sky and ground of the environment take the
    colours of the top and bottom thirds of the ``background`` (S,S,3) uint8, so the hand
    sits in its room; ``px_per_mm`` sizes the subsurface blur."""
    dorsal = random_skin_tone(rng)
    darkness = float(np.clip(1.0 - dorsal.mean() / 0.8, 0.0, 1.0))
    palmar = dorsal + (np.array([0.92, 0.64, 0.60]) - dorsal) * (0.3 + 0.45 * darkness)
    nail = dorsal + (np.array([0.93, 0.78, 0.76]) - dorsal) * 0.4
    third = background.shape[0] // 3
    # Every 4th pixel of the top and bottom thirds: the room is smooth.
    sky = to_linear(background[:third:4, ::4].reshape(-1, 3).mean(0) / 255.0)
    ground = to_linear(background[-third::4, ::4].reshape(-1, 3).mean(0) / 255.0)
    # The environment is the room's colour, mixed with white light so that a green wall
    # tints the skin without dyeing it.
    ambient = rng.uniform(0.2, 0.4)
    sky = ambient * (0.6 + 0.4 * sky / max(sky.mean(), 1e-3))
    ground = ambient * 0.6 * (0.6 + 0.4 * ground / max(ground.mean(), 1e-3))
    warmth = rng.uniform(-0.3, 0.7)  # < 0 cool daylight, > 0 warm lamp
    tint = np.array([1.0, 1.0 - 0.07 * warmth, 1.0 - 0.16 * warmth])
    key = _unit(np.array([rng.normal(0.0, 0.6), rng.normal(-0.5, 0.4), -1.0]))
    key_colour = rng.uniform(0.55, 0.95) * tint
    fill = _unit(np.array([-key[0], 0.3 * key[1], -0.7]))
    return PhotoLighting(
        dorsal=dorsal,
        palmar=palmar,
        nail=nail,
        key=key,
        key_colour=key_colour,
        fill=fill,
        fill_colour=rng.uniform(0.1, 0.35) * key_colour.mean() * np.ones(3),
        sky=sky,
        ground=ground,
        specular=float(rng.uniform(0.03, 0.12)),
        shininess_log2=int(rng.integers(3, 6)),
        scatter_px=float(rng.uniform(1.5, 3.0) * px_per_mm),
    )


def _camera(rng: np.random.Generator, rgb: np.ndarray) -> np.ndarray:
    """Softness (also the anti-aliasing of every edge), vignetting and sensor noise, on
    (S,S,3) uint8 with OpenCV's saturating arithmetic."""
    size = rgb.shape[0]
    img = cv2.GaussianBlur(rgb, (0, 0), rng.uniform(0.6, 1.0) * size / 224)
    if rng.random() < 0.4:
        axis = (np.arange(size, dtype=np.float32) + np.float32(0.5)) / np.float32(size) - np.float32(0.5)
        falloff = np.float32(1.0) - np.float32(rng.uniform(0.2, 0.6)) * (
            axis[None, :] ** 2 + axis[:, None] ** 2
        )
        img = cv2.multiply(img, cv2.merge([falloff] * 3), dtype=cv2.CV_8U)
    if rng.random() < 0.5:  # the same on all channels (luminance)
        amplitude = int(rng.integers(2, 7))
        noise = rng.integers(-amplitude, amplitude + 1, (size, size), dtype=np.int16)
        img = cv2.add(img, cv2.merge([noise] * 3), dtype=cv2.CV_8U)
    return img


def sample_hand(
    rng: np.random.Generator,
    image_size: int = 224,
    *,
    angles: np.ndarray | None = None,
    rotation: np.ndarray | None = None,
    shape: HandShape | None = None,
    fill: float | None = None,
    occluder_prob: float = 0.1,
    forearm_prob: float = 0.92,
    object_prob: float = 0.15,
) -> dict[str, np.ndarray]:
    """Render one random right hand as a photograph would show it (generator synth3).

    Args:
        rng: the only source of randomness (same generator state -> same sample).
        image_size: side S of the square image in pixels (224 like FreiHAND).
        angles: optional (5,3,3) articulation in radians (no held object then);
            drawn from the pose prior, or closed around a held object, if None.
        rotation: optional (3,3) hand -> camera; :func:`.pose_prior.sample_view` if None.
        shape: optional anatomy; drawn by :func:`.skeleton.sample_shape` if None.
        fill: optional longer side of the hand's box over S; U(0.5, 0.72) if None.
        occluder_prob: chance of an object between the camera and the hand.
        forearm_prob: chance of a forearm (60 % of them in a sleeve).
        object_prob: chance (when ``angles`` is None) that the hand holds an object.

    Returns:
        The keys of :func:`handzoo.data.synthetic.scene.sample_hand`: ``image``
        (S,S,3) uint8, ``mask`` (S,S) uint8 255 on visible hand and forearm
        skin, ``parts`` (S,S) uint8 (objects and sleeves are 8, occluder),
        ``joints3d`` (21,3) m camera frame, ``joints2d`` (21,2) px, ``K`` (3,3),
        ``angles`` (5,3,3) rad, ``rotation`` (3,3).
    """
    size = int(image_size)
    shape = sample_shape(rng) if shape is None else shape
    grip = None
    if angles is None:
        if rng.random() < object_prob:
            grip = GRIPS[int(rng.random() < 0.25)]  # handles and bottles more than balls
            angles = grip_pose(rng, grip)
        else:
            angles = sample_pose(rng)
    angles = np.asarray(angles, dtype=np.float64)
    rotation = sample_view(rng) if rotation is None else np.asarray(rotation, dtype=np.float64)
    joints, frames = forward_kinematics(angles, shape)
    forearm = sample_forearm(rng, rotation, forearm_prob, lengths=(0.12, 0.35), attempts=6)
    hand = build_hand(joints, frames, shape, forearm)
    fill = float(rng.uniform(*FILL_RANGE)) if fill is None else float(fill)
    K, translation = frame_hand(rng, hand, rotation, size, fill, sample_intrinsics(rng, size))
    joints3d = joints @ rotation.T + translation

    # Props in the hand frame (held object, sleeve), then in front of the hand.
    props, materials = Props.none(), Materials.empty()
    if grip is not None:
        shiny = rng.random() < 0.5
        material = materials.add(
            object_colour(rng),
            rng.uniform(0.2, 0.6) if shiny else rng.uniform(0.0, 0.1),
            rng.uniform(0.0, 0.5),
        )
        props.add(held_object(rng, grip, shape.palm_scale), material)
    arm = np.flatnonzero(hand.cap_label == FOREARM)
    if len(arm) and rng.random() < SLEEVE_PROB:
        props.add(
            sleeve(rng, hand, int(arm[0])), materials.add(cloth_colour(rng), 0.02, rng.uniform(0.3, 1.0))
        )
    props.prims = props.prims.transformed(rotation, translation)
    if rng.random() < occluder_prob:
        material = materials.add(object_colour(rng), rng.uniform(0.0, 0.5), rng.uniform(0, 0.6))
        props.add(object_in_front(rng, joints3d), material)
    hand_cam = hand.transformed(rotation, translation)
    prims = Primitives.join(hand_cam, props.prims)
    material_of = np.concatenate(
        [
            np.full(len(hand_cam.cap_a), -1),
            props.cap_material,
            np.full(len(hand_cam.ell_centre), -1),
            props.ell_material,
        ]
    ).astype(np.intp)

    vis = rasterize(prims, K, size)
    parts = part_labels(prims, vis)
    skin = surface(prims, K, vis)
    gain = rng.normal(1.0, 0.05, 3) * rng.uniform(0.85, 1.15)
    background = sample_room(rng, size, gain)
    px_per_mm = float(K[0, 0]) / (float(joints3d[:, 2].mean()) * 1000.0)
    lighting = sample_photo_lighting(rng, background, px_per_mm)
    colour = shade_photo(rng, skin, vis, material_of[vis.owner.ravel()[skin.pixels]], materials, lighting)
    rgb = background.reshape(-1, 3)
    colour *= (gain * 255.0).astype(np.float32)[:, None]
    colour += np.float32(0.5)
    rgb[skin.pixels] = np.clip(colour, 0, 255).astype(np.uint8).T
    rgb = _camera(rng, rgb.reshape(size, size, 3))

    return labelled_sample(rgb, parts, joints3d, K, angles, rotation)
