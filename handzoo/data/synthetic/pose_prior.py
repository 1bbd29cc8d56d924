"""A continuous prior over finger articulation and over the hand's global orientation.

Finger curls are correlated the way real hands move: most poses come from a
shared *grasp* latent (0 = open, 1 = fist) plus per-finger and per-joint noise
and the natural cascade (ring and little fingers curl a little more); some let
a random subset of fingers stay extended while the others curl (pointing,
"V", three...), and some draw every finger on its own. The thumb follows the
grasp with its own opposition latent, so pinches and thumbs-up appear as
points of a continuum, not as a fixed list of gestures.

Angles are (5,3,3) radians in the convention of :mod:`.skeleton`.
"""

from __future__ import annotations

import numpy as np

from handzoo.data.synthetic.skeleton import (
    ABD,
    FLEX,
    JOINT_LIMITS,
    TWIST,
    clip_to_limits,
    rot_x,
    rot_y,
    rot_z,
)

# How each finger spreads when the hand opens its fan (positive = toward the thumb).
_SPREAD = np.array([0.0, 1.0, 0.15, -0.55, -1.1])
# Ring and little fingers curl a little more than index in a relaxed hand.
_CASCADE = np.array([0.0, -0.04, 0.0, 0.05, 0.1])

MODES = ("grasp", "subset", "independent")
MODE_PROBS = (0.62, 0.26, 0.12)


def _finger_curls(rng: np.random.Generator, mode: str) -> tuple[np.ndarray, float]:
    """Curl (0 straight .. 1 fully flexed) of index..little, and the grasp latent."""
    if mode == "grasp":
        grasp = float(rng.beta(0.9, 1.1))
        curls = grasp + _CASCADE[1:] * (1.0 - grasp) + rng.normal(0.0, 0.1, 4)
    elif mode == "subset":
        if rng.random() < 0.6:  # counting: the first k fingers from the index (or the little) up
            extended = np.arange(4) < rng.integers(0, 5)
            extended = extended[::-1] if rng.random() < 0.25 else extended
        else:
            extended = rng.random(4) < 0.45
        curls = np.where(extended, rng.uniform(-0.1, 0.3, 4), rng.uniform(0.65, 1.05, 4))
        grasp = float(1.0 - extended.mean())
    else:
        curls = rng.uniform(-0.1, 1.05, 4)
        grasp = float(curls.mean())
    return np.clip(curls, -0.15, 1.05), grasp


def sample_pose(rng: np.random.Generator, mode: str | None = None) -> np.ndarray:
    """A random hand articulation within :data:`.skeleton.JOINT_LIMITS`.

    Args:
        rng: the random source.
        mode: 'grasp', 'subset' or 'independent' (see the module docstring);
            drawn with probabilities :data:`MODE_PROBS` when None.

    Returns:
        (5,3,3) radians, [finger thumb..little, joint, (flexion, abduction, twist)].
    """
    if mode is None:
        mode = MODES[int(rng.choice(len(MODES), p=MODE_PROBS))]
    elif mode not in MODES:
        raise ValueError(f"unknown pose mode {mode!r}; expected one of {', '.join(MODES)}")
    curls, grasp = _finger_curls(rng, mode)
    return articulate(rng, curls, grasp)


def articulate(rng: np.random.Generator, curls: np.ndarray, grasp: float) -> np.ndarray:
    """(5,3,3) radians from the curls (4,) of index..little (0 straight .. 1 flexed) and the
    grasp latent (0 open .. 1 fist) that drives the thumb, with per-joint noise."""
    angles = np.zeros((5, 3, 3))
    deg = np.deg2rad

    # Fingers: MCP and PIP follow the curl with their own noise (hooks and flat
    # grips appear naturally); DIP is coupled to PIP as in real tendons.
    mcp_curl = curls + rng.normal(0.0, 0.12, 4)
    pip_curl = curls + rng.normal(0.0, 0.12, 4)
    angles[1:, 0, FLEX] = deg(5.0) + mcp_curl * deg(80.0)
    angles[1:, 1, FLEX] = deg(6.0) + pip_curl * deg(100.0)
    angles[1:, 2, FLEX] = angles[1:, 1, FLEX] * 0.67 + rng.normal(0.0, deg(7.0), 4)
    spread = rng.uniform(-0.3, 1.0)
    freedom = 1.0 - 0.75 * np.clip(curls, 0.0, 1.0)  # curled fingers cannot spread
    angles[1:, 0, ABD] = deg(15.0) * spread * _SPREAD[1:] * freedom + rng.normal(0, deg(3.0), 4)
    # The little finger rotates toward the thumb as it curls.
    angles[1:, 0, TWIST] = rng.normal(0.0, deg(3.0), 4)
    angles[4, 0, TWIST] += deg(6.0) * np.clip(curls[3], 0.0, 1.0)

    # Thumb: opposition grows with the grasp; its own curl is loosely tied to it.
    opposition = float(np.clip(0.6 * grasp + 0.5 * rng.random() - 0.1, 0.0, 1.0))
    thumb_curl = float(np.clip(0.7 * grasp + rng.normal(0.0, 0.25), -0.2, 1.0))
    if rng.random() < 0.12:  # thumbs-up / hitchhiker: thumb straight whatever the fingers do
        thumb_curl, opposition = rng.uniform(-0.2, 0.1), rng.uniform(0.0, 0.3)
    angles[0, 0, FLEX] = deg(-10.0) + opposition * deg(50.0) + rng.normal(0, deg(6.0))
    angles[0, 0, ABD] = deg(-5.0) + rng.normal(0.0, deg(10.0)) - opposition * deg(10.0)
    angles[0, 0, TWIST] = opposition * deg(25.0) + rng.normal(0.0, deg(5.0))
    angles[0, 1, FLEX] = deg(5.0) + thumb_curl * deg(45.0) + rng.normal(0, deg(6.0))
    angles[0, 1, ABD] = rng.normal(0.0, deg(3.0))
    angles[0, 2, FLEX] = deg(5.0) + thumb_curl * deg(60.0) + rng.normal(0, deg(10.0))
    return clip_to_limits(angles)


def within_limits(angles: np.ndarray, tol: float = 1e-9) -> bool:
    """Whether every angle of ``angles`` (5,3,3) radians is inside :data:`JOINT_LIMITS`."""
    a = np.asarray(angles)
    return bool(np.all(a >= JOINT_LIMITS[..., 0] - tol) and np.all(a <= JOINT_LIMITS[..., 1] + tol))


def random_rotation(rng: np.random.Generator) -> np.ndarray:
    """A uniformly distributed (3,3) rotation matrix (over the whole sphere)."""
    q = rng.normal(size=4)
    w, x, y, z = q / np.linalg.norm(q)
    return np.array(
        [
            [1 - 2 * (y * y + z * z), 2 * (x * y - z * w), 2 * (x * z + y * w)],
            [2 * (x * y + z * w), 1 - 2 * (x * x + z * z), 2 * (y * z - x * w)],
            [2 * (x * z - y * w), 2 * (y * z + x * w), 1 - 2 * (x * x + y * y)],
        ]
    )


# The hand frame seen from the front with the palm toward the camera and the
# fingers up: hand x (radial) -> camera +x, hand y (distal) -> camera -y,
# hand z (palmar) -> camera -z.
PALM_TO_CAMERA = np.array([[1.0, 0.0, 0.0], [0.0, -1.0, 0.0], [0.0, 0.0, -1.0]])


def sample_rotation(rng: np.random.Generator, uniform_prob: float = 0.2) -> np.ndarray:
    """Global orientation of the hand frame in the camera frame, (3,3).

    With probability ``uniform_prob`` the rotation is uniform over SO(3);
    otherwise it is FreiHAND-like: fingers roughly up in the picture (in-plane
    angle ~N(0, 50°)), any roll about the forearm (palm, back or side toward
    the camera) and a moderate tilt toward or away from the camera.
    """
    if rng.random() < uniform_prob:
        return random_rotation(rng)
    roll = rot_y(np.array(rng.uniform(-np.pi, np.pi)))  # about the hand's long axis
    tilt = rot_x(np.array(rng.normal(0.0, np.deg2rad(30.0))))
    in_plane = rot_z(np.array(rng.normal(0.0, np.deg2rad(50.0))))
    return in_plane @ tilt @ PALM_TO_CAMERA @ roll


def sample_view(rng: np.random.Generator, uniform_prob: float = 0.03) -> np.ndarray:
    """The orientation prior of the photo-like generator (synth3), (3,3) hand -> camera.

    Like :func:`sample_rotation`, but the roll about the hand's long axis
    favours the palm (42 %) or the back (48 %) toward the camera over edge-on
    views (the other 10 % uniform), the in-plane angle is N(0, 30°) and the
    tilt N(0, 20°), as in photographs of hands held up to a camera; uniform
    over SO(3) with probability ``uniform_prob``.
    """
    if rng.random() < uniform_prob:
        return random_rotation(rng)
    u = rng.random()
    if u < 0.42:
        roll = rng.normal(0.0, np.deg2rad(30.0))
    elif u < 0.9:
        roll = np.pi + rng.normal(0.0, np.deg2rad(30.0))
    else:
        roll = rng.uniform(-np.pi, np.pi)
    tilt = rot_x(np.array(rng.normal(0.0, np.deg2rad(20.0))))
    in_plane = rot_z(np.array(rng.normal(0.0, np.deg2rad(30.0))))
    return in_plane @ tilt @ PALM_TO_CAMERA @ rot_y(np.array(roll))


GRIPS = ("cylinder", "sphere")
"""Objects a grasping hand holds in the photo-like generator (see :func:`grip_pose`)."""


def grip_pose(rng: np.random.Generator, grip: str) -> np.ndarray:
    """(5,3,3) radians of a hand closed around a held object: a power grip around a
    handle or bottle ('cylinder', fingers 0.5-0.75 curled) or a ball or fruit
    ('sphere', 0.3-0.55), the thumb opposed (or, as in every pose of :func:`articulate`,
    now and then straight up)."""
    if grip not in GRIPS:
        raise ValueError(f"unknown grip {grip!r}; expected one of {', '.join(GRIPS)}")
    lo, hi = (0.5, 0.75) if grip == "cylinder" else (0.3, 0.55)
    curl = rng.uniform(lo, hi)
    curls = curl + _CASCADE[1:] * 0.5 + rng.normal(0.0, 0.05, 4)
    return articulate(rng, np.clip(curls, 0.0, 1.0), float(rng.uniform(0.6, 0.9)))
