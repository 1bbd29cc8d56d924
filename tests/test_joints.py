"""Joint orders against the published gather tables (DESIGN.md), round trips and bones."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
import torch

from handzoo import joints

# Published: MANO (16 joints + tips thumb->little) -> canonical gather.
MANO_TO_CANONICAL = [0, 13, 14, 15, 16, 1, 2, 3, 17, 4, 5, 6, 18, 10, 11, 12, 19, 7, 8, 9, 20]
# AIT = wrist, 5 MCPs, 5 PIPs, 5 DIPs, 5 tips (thumb->little), written out by hand.
CANONICAL_TO_AIT = [0, 1, 5, 9, 13, 17, 2, 6, 10, 14, 18, 3, 7, 11, 15, 19, 4, 8, 12, 16, 20]


def test_canonical_names_follow_freihand_openpose():
    c = joints.CANONICAL
    assert len(c) == 21 and c[0] == "wrist"
    assert c[1:5] == ("thumb_mcp", "thumb_pip", "thumb_dip", "thumb_tip")
    assert c[5] == "index_mcp" and c[8] == "index_tip"
    assert c[9] == "middle_mcp" and c[13] == "ring_mcp" and c[17] == "little_mcp" and c[20] == "little_tip"
    assert len(set(c)) == 21


def test_mano_gather_matches_published_table():
    assert joints.gather_index("mano", "canonical") == MANO_TO_CANONICAL
    assert joints.MANO[:4] == ("wrist", "index_mcp", "index_pip", "index_dip")
    assert joints.MANO[16:] == ("thumb_tip", "index_tip", "middle_tip", "ring_tip", "little_tip")


def test_ait_gather_matches_table():
    assert joints.gather_index("canonical", "ait") == CANONICAL_TO_AIT


def test_convert_uses_the_tables_numpy_and_torch():
    x = np.random.default_rng(0).normal(size=(4, 21, 3))
    np.testing.assert_array_equal(joints.convert(x, "mano", "canonical"), x[:, MANO_TO_CANONICAL])
    np.testing.assert_array_equal(joints.convert(x, "canonical", "ait"), x[:, CANONICAL_TO_AIT])
    t = torch.from_numpy(x)
    assert torch.equal(joints.convert(t, "mano", "canonical"), t[:, MANO_TO_CANONICAL])
    # Another axis: (21, N) layout.
    np.testing.assert_array_equal(
        joints.convert(x[0].T, "canonical", "ait", axis=-1), x[0].T[:, CANONICAL_TO_AIT]
    )


@pytest.mark.parametrize(("a", "b"), list(itertools.permutations(joints.ORDERS, 2)))
def test_round_trips_are_identity(a, b):
    x = np.arange(21 * 3, dtype=float).reshape(21, 3)
    np.testing.assert_array_equal(joints.convert(joints.convert(x, a, b), b, a), x)
    # Named lookups agree: the joint called n in order b is the joint called n in order a.
    y = joints.convert(x, a, b)
    for i, name in enumerate(joints.joint_names(b)):
        np.testing.assert_array_equal(y[i], x[joints.joint_names(a).index(name)])


def test_bones_form_a_tree_rooted_at_the_wrist():
    assert len(joints.BONES) == 20
    children = [c for _, c in joints.BONES]
    assert sorted(children) == list(range(1, 21))
    for parent, child in joints.BONES:
        assert parent < child
        if joints.CANONICAL[child].endswith("_mcp"):
            assert parent == 0
        else:
            assert joints.finger_of(parent) == joints.finger_of(child)
    assert joints.PARENTS[0] == -1 and joints.PARENTS[8] == 7 and joints.PARENTS[17] == 0


def test_errors():
    with pytest.raises(ValueError, match="unknown joint order 'openpose2'"):
        joints.joint_names("openpose2")
    with pytest.raises(ValueError, match="expected 21 joints"):
        joints.convert(np.zeros((20, 3)), "mano", "canonical")
