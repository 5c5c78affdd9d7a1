"""The closed loop's bandit settings on the default simulator only (the held-out simulator is not looked at when
choosing them): per setting of (explore, prior_sd, prior bonus, gamma), the mean cumulative reward over users of
static, bandit and oracle after K impressions, and the paired t statistic of bandit - static. Features are read
from each arm's plan text (what perception reads from the rendered creative, the palette fixed), so no render is
needed here; notebook 40 renders and verifies every impression.

    PYTHONPATH=$PWD nice -n 15 .venv/bin/python scripts/bench_closed_loop.py --users 40 [--data-dir data] [--heldout]
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from nextads_lib import closed_loop as L
from nextads_lib.config import StudyPaths
from nextads_lib.pcg import read_profile
from nextads_lib.reflector import list_pairs
from nextads_lib.schemas import ProductLibrary, Storyboard, UserHistory
from nextads_lib.store import read_jsonl, read_model

GRID = [(1.0, 0.5, 0.15, 0.8), (0.5, 0.3, 0.3, 0.8), (0.3, 0.3, 0.3, 0.7), (0.5, 0.3, 0.5, 0.7),
        (0.3, 0.2, 0.3, 0.6), (0.5, 0.5, 0.3, 0.5), (0.0, 0.3, 0.3, 0.7)]


class _Planner:
    planned = L.Shower.planned

    def __init__(self, product):
        self.product, self._planned, self.palette = product, {}, "earth"


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--data-dir", default="data")
    ap.add_argument("--users", type=int, default=40)
    ap.add_argument("--impressions", type=int, default=10)
    ap.add_argument("--heldout", action="store_true", help="also print the held-out simulator (for the report only)")
    a = ap.parse_args()
    p = StudyPaths.from_data_dir(a.data_dir)
    lib = read_model(p.library_json, ProductLibrary)
    hist = {u.user_id: u for u in read_jsonl(p.bench_users("pcg"), UserHistory)}
    truths = L.load_truths(p, hist)
    seen, data = set(), []
    for d, m in list_pairs(p, "pcg", "nextads__offline__compositor__paper"):
        if m.user_id in truths and m.user_id not in seen and len(data) < a.users:
            seen.add(m.user_id)
            prod = lib.get(m.product_id)
            data.append((m.user_id, prod, read_model(d / "plan.json", Storyboard), read_profile(d), _Planner(prod),
                         L.arms_of(prod)))
    sims = ["default"] + (["heldout"] if a.heldout else [])
    for which in sims:
        sim = L.make_simulator(which, truths, 20260)
        for explore, prior_sd, bonus, gamma in GRID:
            t0 = time.perf_counter()
            tot: dict[str, list[float]] = {"static": [], "bandit": [], "oracle": []}
            for uid, prod, plan, prof, pl, arms in data:
                b0 = L.base_arm(plan, prod, prof)
                st = L.initial_state(uid, prof, b0)
                c0 = L.features_from_text([s.on_screen_text for s in plan.slots], prod, duration_s=plan.duration_s,
                                          palette="earth")
                for pol in tot:
                    bandit = L.ThompsonBandit(arms, explore=explore, prior_sd=prior_sd, gamma=gamma, seed=20260,
                                              prior_mean={**L.prior_from_state(st, bonus), "bias": 0.5}, key=(uid,))
                    sess, cum = sim.start(uid, c0), 0.0
                    for k in range(a.impressions):
                        if pol == "static":
                            arm, c = b0, c0
                        elif pol == "bandit":
                            arm = bandit.choose()
                            c = pl.planned(plan, arm, k % 2)[1]
                        else:
                            arm = max(arms, key=lambda x: L.expected_reward(sim, uid, pl.planned(plan, x, k % 2)[1], k, sess))
                            c = pl.planned(plan, arm, k % 2)[1]
                        fb, _ = sim.show(uid, prod.id, c, k, sess)
                        r = L.reward_of(fb)
                        cum += r
                        if pol == "bandit":
                            bandit.update(arm, r)
                    tot[pol].append(cum)
            s, b, o = (np.array(tot[x]) for x in ("static", "bandit", "oracle"))
            d = b - s
            print(f"{which:8s} explore={explore:<4} prior_sd={prior_sd:<4} bonus={bonus:<4} gamma={gamma:<4} "
                  f"static={s.mean():.2f} bandit={b.mean():.2f} oracle={o.mean():.2f} "
                  f"t(bandit-static)={d.mean() / (d.std(ddof=1) / np.sqrt(len(d))):.2f}  ({time.perf_counter() - t0:.1f} s)",
                  flush=True)


if __name__ == "__main__":
    main()
