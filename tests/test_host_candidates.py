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


def test_errors_name_the_default_item_and_the_field():
    with pytest.raises(H.HostError) as e:
        H.find_candidates(analysis(11, 4.0, (), ()))
    assert (e.value.item, e.value.field) == ("host", "host_video")
    with pytest.raises(H.HostError) as e:
        H.valid_range(analysis(2, 0.5, (), ()))
    assert (e.value.item, e.value.field, e.value.reason) == ("host", "host_video",
                                                             "no frame lies between the first and last second")
    # the 1e-6 tolerance: a host a microsecond short of 3 s (rounding of n_frames / fps) is accepted
    assert H.valid_range(analysis(2_999_999, 1e6, (), ())) == (1_000_000, 1_999_999)


def test_cut_candidates_at_the_edges_of_the_valid_range_and_in_a_three_frame_shot():
    # lo = 4, hi = 36; a cut at 3 puts its point at 4, one at 35 at 36; a 3-frame shot (12, 15) holds one at 13
    cands = H.find_candidates(analysis(boundaries=(3, 12, 15, 35), strengths=(0.9, 0.8, 0.7, 0.6),
                                       motion=np.full(40, 0.1, np.float32)), max_candidates=20)
    cuts = [c.frame_index for c in cands if c.kind == "after_shot_boundary"]
    assert cuts == [4, 13, 16, 36]


def test_a_still_frame_next_to_a_cut_without_its_own_point_is_not_chosen():
    # the cut at 36 has no point (37 > hi); the stillest frame 35 lies next to it, so 34 is taken instead
    motion = np.full(40, 0.1, np.float32)
    motion[34:37] = 0.0
    cands = H.find_candidates(analysis(boundaries=(36,), strengths=(0.9,), motion=motion))
    lows = [c.frame_index for c in cands if c.kind == "low_motion"]
    assert 35 not in lows and 34 in lows


def test_the_last_valid_frame_can_be_chosen_and_the_one_after_it_cannot():
    motion = np.full(40, 0.1, np.float32)
    motion[36:39] = 0.0  # smoothed: 37 is the stillest (outside, hi = 36), then 36
    lows = [c.frame_index for c in H.find_candidates(analysis(boundaries=(), strengths=(), motion=motion))
            if c.kind == "low_motion"]
    assert 36 in lows and 37 not in lows


def test_motion_is_smoothed_over_half_a_second():
    """At 8 fps the window is 5 frames: a 3-frame still dip (smoothed 0.04) ranks after 5-frame troughs of 0.03
    (smoothed 0.03); a 3-frame window would put the dip (smoothed 0) first."""
    motion = np.full(88, 0.1, np.float32)
    motion[19:22] = 0.0
    for c in (35, 50, 65):
        motion[c - 2:c + 3] = 0.03
    cands = H.find_candidates(analysis(88, 8.0, (), (), motion=motion))
    assert [(c.frame_index, c.kind) for c in cands] == [(35, "low_motion"), (44, "middle"), (50, "low_motion"),
                                                        (65, "low_motion")]


def test_motion_equal_to_six_decimals_is_a_tie_broken_towards_the_middle():
    """Smoothed motion 0.0666667 (around frame 17) and 0.0666670 (around 21) tie: the frame nearest the
    middle (20) is taken first, which keeps 16 and 24 and leaves out 18 and 22."""
    motion = np.full(40, 0.1, np.float32)
    motion[17] = 0.0
    motion[21] = 1e-6
    lows = [c.frame_index for c in H.find_candidates(analysis(boundaries=(), strengths=(), motion=motion))
            if c.kind == "low_motion"]
    assert lows == [16, 20, 24]


def test_times_are_rounded_to_four_decimals_and_motion_to_five():
    # all motion equal: the middle (16), then 13 and 19, three frames (a second) away
    cands = H.find_candidates(analysis(32, 3.0, (), (), motion=np.full(32, 0.1234567, np.float32)))
    assert rows(cands) == [(0, 13, "low_motion", 4.3333, 0.12346, 0.0), (1, 16, "low_motion", 5.3333, 0.12346, 0.0),
                           (2, 19, "low_motion", 6.3333, 0.12346, 0.0)]


def test_a_cuts_strength_is_kept_to_four_decimals_and_within_0_1():
    cands = H.find_candidates(analysis(strengths=(0.123456, 1.7)))
    assert [(c.frame_index, c.boundary_strength) for c in cands if c.kind == "after_shot_boundary"] == [
        (13, 0.1235), (25, 1.0)]


@pytest.mark.parametrize("fps, a, picked", [(4.0, 10, 10), (8.0, 20, 21)])
def test_the_smoothed_motion_is_the_windows_mean(fps, a, picked):
    """A still trough around frame a (the window, 2 x round(fps / 4) + 1 frames, all 0) and a tiny motion of
    1.8e-6 just after it: frame a + 1 then smooths to 1.8e-6 / 3 = 6e-7 at 4 fps, which rounds (6 decimals) to
    1e-6 and ranks after a (0); at 8 fps to 1.8e-6 / 5 = 3.6e-7, which rounds to 0 and ties with a, and a tie goes
    to the frame nearer the middle, a + 1. Only one of the two is taken (they are less than a second apart)."""
    n, win = int(10 * fps), int(round(fps / 4))
    motion = np.full(n, 0.1, np.float32)
    motion[a - win:a + win + 1] = 0.0
    motion[a + win + 1] = 1.8e-6
    cands = H.find_candidates(analysis(n, fps, (), (), motion=motion))
    assert [c.frame_index for c in cands if c.kind == "low_motion" and a <= c.frame_index <= a + 1] == [picked]
