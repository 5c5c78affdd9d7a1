"""Integration points chosen from a host analysis built by hand (cuts, motion, rate known exactly), so every
candidate, its kind, time, motion and strength is written out here: the edges kept free, a candidate just after
each cut (not in a shot too short to hold it), low-motion points a second apart and away from cuts, the middle,
and the cap keeping the cuts first. No video is decoded (test_host.py does it on a real file)."""

from __future__ import annotations

import numpy as np
import pytest

from nextads_lib import host as H


def analysis(n: int = 40, fps: float = 4.0, boundaries=(12, 24), strengths=(0.8, 0.5), motion=None) -> H.HostAnalysis:
    hc = np.zeros(max(0, n - 1), np.float32)
    for b, s in zip(boundaries, strengths):
        hc[b - 1] = s
    if motion is None:
        motion = np.full(n, 0.1, np.float32)
        if n == 40:
            motion[7:10] = 0.0  # a still moment around frame 8
            motion[29:32] = 0.0  # and around frame 30
            motion[20] = 0.2  # the middle moves
    return H.HostAnalysis(path="host.mp4", info=None, n_frames=n, fps=fps, changes=np.zeros(max(0, n - 1), np.float32),
                          hist_changes=hc, boundaries=list(boundaries), motion=np.asarray(motion, np.float32),
                          small=np.zeros((0, 64, 64, 3), np.uint8))


def rows(cands):
    return [(c.index, c.frame_index, c.kind, c.timestamp_s, c.motion, c.boundary_strength) for c in cands]


def test_valid_range_keeps_a_second_free_at_each_end():
    assert H.valid_range(analysis(40, 4.0)) == (4, 36)
    assert H.valid_range(analysis(13, 4.0, (), ())) == (4, 9)
    assert H.valid_range(analysis(12, 4.0, (), ())) == (4, 8)  # exactly 3 s is enough
    assert H.valid_range(analysis(3, 1.0, (), ())) == (1, 1)  # the point needs a host frame after it
    with pytest.raises(H.HostError) as e:
        H.valid_range(analysis(11, 4.0, (), ()), "pair p7")
    assert str(e.value).startswith("pair p7: host_video: the host lasts 2.75 s; an integration point needs at least 3 s")
    with pytest.raises(H.HostError, match="no frame lies between the first and last second"):
        H.valid_range(analysis(2, 0.5, (), ()))


def test_candidates_after_cuts_at_still_moments_and_the_middle():
    assert rows(H.find_candidates(analysis())) == [
        (0, 8, "low_motion", 2.0, 0.0, 0.0),
        (1, 13, "after_shot_boundary", 3.25, 0.1, 0.8),  # a quarter second (1 frame) after the cut at 12
        (2, 18, "low_motion", 4.5, 0.1, 0.0),
        (3, 20, "middle", 5.0, 0.2, 0.0),
        (4, 25, "after_shot_boundary", 6.25, 0.1, 0.5),
        (5, 30, "low_motion", 7.5, 0.0, 0.0),
    ]


def test_the_cap_keeps_the_cuts_first_then_the_stillest():
    assert [(c.index, c.frame_index, c.kind) for c in H.find_candidates(analysis(), max_candidates=4)] == [
        (0, 8, "low_motion"), (1, 13, "after_shot_boundary"), (2, 25, "after_shot_boundary"), (3, 30, "low_motion")]
    assert len(H.find_candidates(analysis())) == 6 <= H.MAX_CANDIDATES


def test_no_point_in_a_shot_too_short_near_an_edge_or_next_to_a_cut():
    # a 2-frame shot (12, 14) cannot hold a point; a cut at frame 2 lies in the first second
    cands = H.find_candidates(analysis(boundaries=(2, 12, 14), strengths=(0.9, 0.8, 0.7),
                                       motion=np.full(40, 0.1, np.float32)))
    kinds = {c.frame_index: c.kind for c in cands}
    assert "after_shot_boundary" not in {kinds.get(3), kinds.get(13)}
    assert kinds.get(15) == "after_shot_boundary"
    assert all(4 <= c.frame_index <= 36 for c in cands)
    lows = sorted(f for f, k in kinds.items() if k == "low_motion")
    assert len(lows) == H.N_LOW_MOTION
    assert all(abs(f - b) > 1 for f in lows for b in (2, 12, 14))  # never on or next to a cut
    others = sorted(kinds)
    assert all(abs(f - g) >= 4 for f in lows for g in others if g != f)  # a second apart from every other point


def test_boundary_strength_is_clipped_to_one():
    (c,) = [c for c in H.find_candidates(analysis(boundaries=(12,), strengths=(1.7,))) if c.kind == "after_shot_boundary"]
    assert c.boundary_strength == 1.0 and c.frame_index == 13


def test_a_still_host_gets_points_a_second_apart_around_its_middle():
    cands = H.find_candidates(analysis(boundaries=(), strengths=(), motion=np.zeros(40, np.float32)))
    # every frame ties on motion: the nearest to the middle first, each at least fps frames from the others
    assert rows(cands) == [(0, 16, "low_motion", 4.0, 0.0, 0.0), (1, 20, "low_motion", 5.0, 0.0, 0.0),
                           (2, 24, "low_motion", 6.0, 0.0, 0.0)]
