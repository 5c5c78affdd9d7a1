"""The Reflector on real tiny creatives: rules from violations to typed directives, the routing of every
directive kind (Director plan patch re-validated, Producer slot edits), that an execution-level fix re-renders
only its slot (decoded frames outside it unchanged within encoder tolerance), trimming, relabelling, a
model-backed Reflector behind the tests' local OpenAI server, and the loop (rounds, release, parquet, resume)."""

from __future__ import annotations

import json
import typing

import numpy as np
import pytest

from nextads_lib import media
from nextads_lib import reflector as R
from nextads_lib import verifier as V
from nextads_lib.backends import get_backend
from nextads_lib.producer import edit, post
from nextads_lib.schemas import Directive, ReleaseRecord, RoundRecord, Storyboard, Verification
from nextads_lib.store import read_model

from test_pcg import chat_server  # noqa: F401  (fixture: local OpenAI-compatible server)
from test_verifier import PAIR, RUN, inputs, plant, stub_utility, tiny_run, write_unlabelled  # noqa: E402

#: mean absolute grey-level difference allowed for frames that were decoded and re-encoded, not re-rendered
TOL = 3.0


@pytest.fixture(scope="module")
def paths(tmp_path_factory):
    return tiny_run(tmp_path_factory.mktemp("reflect_data"))


@pytest.fixture(scope="module")
def offline(paths):
    return get_backend("offline", cache_dir=paths.cache)


def verify(paths, d, utility=None, rnd=0):
    product, history, lib = inputs(paths)
    return V.verify_creative(d, pair_id=d.name, task="pcg", run=RUN, product=product, history=history, library=lib,
                             utility=utility, round_index=rnd)


def apply(paths, d, directives, out="round_1"):
    product, history, _ = inputs(paths)
    return R.apply_directives(d, d / "verify" / out, directives, product=product, history=history, task="pcg",
                              cache_dir=paths.cache)


def frame_diffs(a, b):
    fa, fb = media.read_frames(a).astype(np.float32), media.read_frames(b).astype(np.float32)
    assert fa.shape == fb.shape
    return np.abs(fa - fb).mean(axis=(1, 2, 3))


def span_of(plan, slot, fps=5.0):
    return next(sp for sp in post.slot_spans(plan, fps) if sp.slot.index == slot)


# ------------------------------------------------------------------------------------------ routing
def test_every_directive_kind_has_a_route():
    kinds = set(typing.get_args(Directive.model_fields["kind"].annotation))
    assert set(R.ROUTES) == kinds
    for k, (target, level) in R.ROUTES.items():
        assert (target == "director") == (level == "plan"), k
    assert {k for k, v in R.ROUTES.items() if v[0] == "producer"} == {"recaption", "relabel", "trim_slot",
                                                                       "regenerate_slot"}


def test_text_violations_become_plan_patches_and_the_revision_passes(paths, offline):
    d = plant(paths, "bad", s0_on_screen_text="Hi @beanqueen, coffee time",
              s1_narration="Brewco Beans cures tiredness, better than Starbucks.")
    ver = verify(paths, d)
    assert ver.decision == "reject"
    plan = read_model(d / "plan.json", Storyboard)
    product, _, _ = inputs(paths)
    ans = R.reflect(ver, plan, product, offline)
    kinds = [x.kind for x in ans.directives]
    assert kinds.count("replace_text") == 2 and "add_constraint" in kinds
    assert all(x.target == "director" and x.level == "plan" for x in ans.directives)
    assert any(a.startswith("plan-level: unsupported claim") for a in ans.attribution)
    rep = next(x for x in ans.directives if x.slot == 0)
    assert "@beanqueen" not in rep.new and "coffee time" in rep.new  # the token goes, the rest stays
    rep1 = next(x for x in ans.directives if x.slot == 1)
    assert "Starbucks" not in rep1.new and "cures" not in rep1.new
    con = next(x for x in ans.directives if x.kind == "add_constraint")
    assert set(con.forbid) == {"@beanqueen", "Starbucks", "cures tiredness"}
    res = apply(paths, d, ans.directives)
    assert res["slots"] == [0, 1] and not res["skipped"]
    rd = d / "verify" / "round_1"
    new_plan = read_model(rd / "plan.json", Storyboard)
    assert new_plan.slots[2] == plan.slots[2]  # the CTA slot is untouched in the plan ...
    diffs = frame_diffs(d / "creative.mp4", rd / "creative.mp4")
    sp2 = span_of(plan, 2)
    assert diffs[sp2.start:sp2.stop].max() < TOL  # ... and in the video
    ver2 = verify(paths, rd, rnd=1)
    assert ver2.decision == "accept", ver2.rationales


def test_recaption_rerenders_only_its_slot(paths, offline):
    d = plant(paths, "notext2", s1_on_screen_text="")
    good = read_model(paths.run_dir("pcg", RUN) / PAIR / "plan.json", Storyboard)
    from nextads_lib.store import write_json

    write_json(d / "plan.json", good)
    ver = verify(paths, d)
    product, _, _ = inputs(paths)
    ans = R.reflect(ver, good, product, offline)
    assert [(x.kind, x.target, x.level, x.slot) for x in ans.directives] == [("recaption", "producer", "execution", 1)]
    res = apply(paths, d, ans.directives)
    sp = span_of(good, 1)
    assert res["slots"] == [1] and res["frames"] == sp.n
    diffs = frame_diffs(d / "creative.mp4", d / "verify" / "round_1" / "creative.mp4")
    outside = np.r_[diffs[:sp.start], diffs[sp.stop:]]
    assert outside.max() < TOL  # decoded, re-encoded, never re-rendered
    assert diffs[sp.start:sp.stop].mean() > 2 * outside.mean()  # the slot now carries its text
    assert verify(paths, d / "verify" / "round_1").decision == "accept"


def test_relabel_touches_only_frames_without_the_label(paths, offline):
    d = plant(paths, "nolabel2")
    write_unlabelled(d, d / "creative.mp4")
    ver = verify(paths, d)
    product, _, _ = inputs(paths)
    ans = R.reflect(ver, read_model(d / "plan.json", Storyboard), product, offline)
    assert [(x.kind, x.target) for x in ans.directives] == [("relabel", "producer")]
    apply(paths, d, ans.directives)
    out = media.read_frames(d / "verify" / "round_1" / "creative.mp4")
    assert all(post.label_present(f) for f in out)
    src = media.read_frames(d / "creative.mp4").astype(np.float32)
    x0, y0, x1, y1 = post.label_box(out.shape[2], out.shape[1])
    mask = np.ones(out.shape[1:3], bool)
    mask[max(0, y0 - 2):y1 + 2, max(0, x0 - 2):x1 + 2] = False
    assert np.abs(out.astype(np.float32) - src)[:, mask].mean() < TOL  # nothing outside the label changed
    v1 = verify(paths, d / "verify" / "round_1")
    assert v1.decision == "accept", v1.rationales


def test_regenerate_slot_changes_only_that_slot(paths):
    d = plant(paths, "regen")
    plan = read_model(d / "plan.json", Storyboard)
    moving = next(s for s in plan.slots if s.camera != "static")
    dirs = [Directive(kind="regenerate_slot", target="producer", level="execution", slot=moving.index, field="camera",
                      old=moving.camera, new="static", reason="test")]
    res = apply(paths, d, dirs)
    assert res["slots"] == [moving.index]
    new_plan = read_model(d / "verify" / "round_1" / "plan.json", Storyboard)
    assert next(s for s in new_plan.slots if s.index == moving.index).camera == "static"
    diffs = frame_diffs(d / "creative.mp4", d / "verify" / "round_1" / "creative.mp4")
    sp = span_of(plan, moving.index)
    spans = post.slot_spans(plan, 5.0)
    nxt = [x for x in spans if x.start == sp.stop]
    n_tr = min(int(round(post.TRANSITION_S[nxt[0].slot.pacing] * 5.0)), nxt[0].n // 3) if nxt else 0
    # the slot and the next slot's dissolve out of it (it blends from this slot's last picture) are rendered
    assert res["frames"] == sp.n + n_tr
    assert np.r_[diffs[:sp.start], diffs[sp.stop + n_tr:]].max() < TOL


def test_trim_slot_cuts_frames_and_retimes_the_plan(paths):
    d = plant(paths, "trim")
    plan = read_model(d / "plan.json", Storyboard)
    sp = span_of(plan, 1)
    dirs = [Directive(kind="trim_slot", target="producer", level="execution", slot=1, frames=2, reason="test")]
    res = apply(paths, d, dirs)
    assert any(a.startswith("trim") for a in res["applied"])
    rd = d / "verify" / "round_1"
    new_plan = read_model(rd / "plan.json", Storyboard)
    assert new_plan.duration_s == pytest.approx(plan.duration_s - 0.4)
    assert new_plan.slots[2].start_s == pytest.approx(plan.slots[2].start_s - 0.4)
    a = media.read_frames(d / "creative.mp4").astype(np.float32)
    b = media.read_frames(rd / "creative.mp4").astype(np.float32)
    assert len(b) == len(a) - 2 == media.probe(rd / "creative.mp4").n_frames
    keep = np.r_[0:sp.stop - 2, sp.stop:len(a)]
    assert np.abs(a[keep] - b).mean(axis=(1, 2, 3)).max() < TOL


def test_plan_patches_swap_hook_constraint_and_refusal(paths):
    d = plant(paths, "patch")
    plan = read_model(d / "plan.json", Storyboard)
    dirs = [Directive(kind="change_hook", target="director", level="plan", field="hook", new="Meet Brewco Beans."),
            Directive(kind="swap_asset", target="director", level="plan", slot=1, field="assets",
                      old=plan.slots[1].assets[0], new="logo"),
            Directive(kind="add_constraint", target="director", level="plan", forbid=["Portland"])]
    new, changed, forbid, applied, skipped, base = R.patch_plan(plan, dirs)
    assert new.hook == "Meet Brewco Beans." and new.slots[0].on_screen_text == "Meet Brewco Beans."
    assert "logo" in new.slots[1].assets and changed == {0, 1} and forbid == ["Portland"] and not skipped
    # a patch that breaks a rule of the Director (a number not in the facts) is refused
    bad = [Directive(kind="replace_text", target="director", level="plan", slot=1, field="narration",
                     new="Brewco Beans, now 50% off.")]
    res = apply(paths, d, bad, out="round_x")
    assert any("plan patch refused" in s and "50" in s for s in res["skipped"])
    assert read_model(d / "verify" / "round_x" / "plan.json", Storyboard) == plan
    assert R.constraint_errors(new.model_copy(update={"hook": "Portland mornings"}), ["Portland"])


def test_low_utility_gets_plan_and_execution_directives(paths, offline):
    d = paths.run_dir("pcg", RUN) / PAIR
    ver = verify(paths, d, stub_utility(paths, score=2.0))
    ver = ver.model_copy(update={"utility": [u.model_copy(update={"score": 0.2}) for u in ver.utility]})
    product, _, _ = inputs(paths)
    ans = R.reflect(ver, read_model(d / "plan.json", Storyboard), product, offline)
    kinds = {x.kind for x in ans.directives}
    assert {"change_hook", "replace_text", "regenerate_slot"} <= kinds
    hook = next(x for x in ans.directives if x.kind == "change_hook")
    assert hook.new and hook.new != hook.old


# ------------------------------------------------------------------------------ model-backed Reflector
def test_model_backed_reflector_on_the_local_openai_server(paths, chat_server):  # noqa: F811
    answer = {"attribution": ["execution-level: text not rendered in slot 1"],
              "directives": [{"kind": "recaption", "target": "director", "level": "plan", "slot": 1,
                              "field": "on_screen_text", "reason": "text missing"}]}
    srv = chat_server(lambda body: answer)
    backend = get_backend("openai:gpt-4o-test", cache_dir=paths.cache / "model_reflector")
    d = plant(paths, "notext3", s1_on_screen_text="")
    good = read_model(paths.run_dir("pcg", RUN) / PAIR / "plan.json", Storyboard)
    from nextads_lib.store import write_json

    write_json(d / "plan.json", good)
    ver = verify(paths, d).model_copy(update={"video_path": "x"})
    product, _, _ = inputs(paths)
    ans = R.reflect(ver, good, product, backend)
    assert [(x.kind, x.target, x.level) for x in ans.directives] == [("recaption", "producer", "execution")]
    body = json.dumps(srv.log[-1])
    assert "Reflector" in body and "text_not_rendered" in body and "json_schema" in body
    assert backend.usage[-1].input_tokens == 100


# ------------------------------------------------------------------------------------------------ loop
def test_loop_rounds_release_parquet_and_resume(paths):
    import pandas as pd

    bad = plant(paths, "loop", s0_on_screen_text="Hi @beanqueen", s1_narration="Cheaper than Starbucks.")
    orig = (bad / "creative.mp4").read_bytes()
    util = stub_utility(paths)
    df = R.verify_and_reflect(paths, "pcg", RUN, max_rounds=2, utility=util, progress=False)
    assert set(df.columns) == set(R.COLUMNS)
    rows = df[df.pair_id == bad.name].sort_values("round")
    assert list(rows["decision"]) == ["reject", "accept"] and rows["released"].tolist() == [False, True]
    assert rows.iloc[1]["targets"] == "director" and rows.iloc[1]["frames_rerendered"] > 0
    assert (bad / "creative.mp4").read_bytes() == orig  # the original creative is never overwritten
    rel = read_model(bad / "released.json", ReleaseRecord)
    assert rel.round == 1 and rel.source_video == "verify/round_1/creative.mp4" and rel.label_verified
    # the released copy carries the machine-readable disclosure, read back from the file
    from nextads_lib.compliance import disclosure

    assert rel.video_path == "released.mp4" and rel.c2pa_verified and rel.aigc_verified
    c2 = disclosure.read_c2pa(bad / "released.mp4")
    assert c2["ai_created"] and c2["validation_state"] == "Valid" and c2["backends"]["producer"] == rel.backends["producer"]
    assert disclosure.read_aigc(bad / "released.mp4")["Label"] == "1"
    assert (paths.interim / "c2pa" / "chain.pem").is_file()
    rec = read_model(bad / "verify" / "round_1" / "round.json", RoundRecord)
    assert rec.decision_before == "reject" and rec.decision_after == "accept" and rec.violations_after == 0
    assert rec.utility_before is not None and rec.utility_after is not None
    clean = paths.run_dir("pcg", RUN) / PAIR
    assert read_model(clean / "released.json", ReleaseRecord).source_video == "creative.mp4"
    assert not (clean / "verify" / "round_1").exists()
    on_disk = pd.read_parquet(paths.results / "verify_pcg.parquet")
    assert len(on_disk) == len(df)
    tab = R.summary_table(df, max_rounds=2)
    assert list(tab["round"]) == [0, 1, 2]
    assert tab.iloc[-1]["accept"] == tab.iloc[-1]["pairs"]  # states carry forward: every pair ends accepted here
    # rerun: cached, nothing re-rendered
    m = (bad / "verify" / "round_1" / "creative.mp4").stat().st_mtime_ns
    df2 = R.verify_and_reflect(paths, "pcg", RUN, max_rounds=2, utility=util, progress=False)
    assert (bad / "verify" / "round_1" / "creative.mp4").stat().st_mtime_ns == m
    pd.testing.assert_frame_equal(df.reset_index(drop=True), df2.reset_index(drop=True))


def test_pci_segment_edits_are_spliced_at_the_seam_only(paths, tmp_path):
    """A PCI integrated video (host frames around the creative) gets the re-rendered segment frames at its seam;
    the host frames before and after are untouched (within encoder tolerance)."""
    d = plant(paths, "pcihost", s1_on_screen_text="Roasted in small batches")
    src = paths.run_dir("pcg", RUN) / PAIR
    seg_old = media.read_frames(src / "creative.mp4")
    host = np.zeros((10,) + seg_old.shape[1:], np.uint8)
    host[:] = (40, 90, 160)
    integrated = tmp_path / "integrated.mp4"
    media.write_video(integrated, list(host[:6]) + list(seg_old) + list(host[6:]), 5.0)
    plan = read_model(d / "plan.json", Storyboard)
    sp = span_of(plan, 1)
    req, man = edit.producer_request(d)
    rep = edit.splice_into(integrated, d / "creative.mp4", 6, list(range(sp.start, sp.stop)), tmp_path / "out.mp4",
                           5.0, edit.producer_for(man))
    assert rep.frames_rendered == [6 + i for i in range(sp.start, sp.stop)]
    diffs = frame_diffs(integrated, tmp_path / "out.mp4")
    inside = np.zeros(len(diffs), bool)
    inside[6 + sp.start:6 + sp.stop] = True
    assert diffs[~inside].max() < TOL and diffs[inside].mean() > diffs[~inside].mean() + 1.0
    new_seg = media.read_frames(d / "creative.mp4").astype(np.float32)
    out = media.read_frames(tmp_path / "out.mp4").astype(np.float32)
    assert np.abs(out[6 + sp.start:6 + sp.stop] - new_seg[sp.start:sp.stop]).mean() < TOL


def test_apply_reports_the_decoded_check_outside_the_edit(paths):
    d = plant(paths, "decoded", s1_on_screen_text="Notes of cocoa")
    dirs = [Directive(kind="replace_text", target="director", level="plan", slot=1, field="on_screen_text",
                      new="Roasted in small batches")]
    res = apply(paths, d, dirs)
    assert res["outside_max_diff"] is not None and res["outside_max_diff"] < TOL
    assert any(a.startswith("decoded check:") for a in res["applied"])


# --------------------------------------------------------- a Sora creative through the loop (issue 17)
@pytest.fixture(scope="module")
def video_server():
    import importlib.util
    from pathlib import Path

    spec = importlib.util.spec_from_file_location("video_routes", Path(__file__).parent / "fakeapi" / "video_routes.py")
    routes = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(routes)
    with routes.VideoServer() as s:
        yield s


@pytest.mark.parametrize("spec,which,operation", [("sora:sora-2", "middle", "remix"),
                                                    ("veo:veo-3.1-fast-generate-preview", "last", "extend")])
def test_generative_creative_through_the_loop_is_edited_at_the_flagged_slot(paths, video_server, monkeypatch, spec,
                                                                             which, operation):
    """verify_and_reflect on a run whose creative an API model made (the tests' local videos server): the Verifier
    flags another brand in one slot's composition, the Reflector answers with a slot directive, apply_directives
    sends the API's own edit with the patched prompt (Sora: the remix of the clip covering the slot, with that
    clip's id; Veo, the last slot: the extension of the footage before it), and only that slot's frames change;
    the round's producer.json records the operation."""
    import shutil

    from nextads_lib.producer import get_producer
    from nextads_lib.schemas import PairManifest, ProducerManifest
    from nextads_lib.store import write_json

    monkeypatch.setenv("OPENAI_API_KEY", "sk-test")
    monkeypatch.setenv("OPENAI_BASE_URL", video_server.url + "/v1")
    monkeypatch.setenv("GEMINI_API_KEY", "gm-test")
    monkeypatch.setenv("GOOGLE_VERTEX_BASE_URL", video_server.url + "/")
    for var in ("GOOGLE_API_KEY", "GOOGLE_CLOUD_PROJECT", "GOOGLE_CLOUD_LOCATION", "GOOGLE_GENAI_API_VERSION"):
        monkeypatch.delenv(var, raising=False)
    real = edit.producer_for

    def fast(man, cache_dir=None):  # the re-made Producer polls the local server without waiting
        p = real(man, cache_dir)
        p.poll_interval_s = 0.0
        return p

    monkeypatch.setattr(edit, "producer_for", fast)
    run = f"nextads__offline__{spec.split(':')[0]}__paper"
    src, dst = paths.run_dir("pcg", RUN) / PAIR, paths.run_dir("pcg", run) / PAIR
    shutil.rmtree(dst.parent, ignore_errors=True)
    shutil.copytree(src, dst, ignore=shutil.ignore_patterns("verify", "released*", "creative.mp4"))
    product, _, lib = inputs(paths)
    brand = V.other_brands(product, lib)[0]
    plan = read_model(src / "plan.json", Storyboard)
    order = sorted(plan.slots, key=lambda x: x.start_s)
    target = (order[1] if which == "middle" else order[-1]).index
    slots = [s.model_copy(update={"composition": f"{s.composition.rstrip('.')}, a {brand} mug beside it"})
             if s.index == target else s for s in plan.slots]
    plan = plan.model_copy(update={"slots": slots})
    write_json(dst / "plan.json", plan)
    req, _ = edit.producer_request(dst)
    sman = get_producer(spec, poll_interval_s=0.0, post_production=False).render(req, dst / "creative.mp4")
    write_json(dst / "producer.json", sman)
    pm = read_model(dst / "manifest.json", PairManifest)
    write_json(dst / "manifest.json", pm.model_copy(update={"run_name": run, "producer_backend": spec}))
    [clip] = sman.settings["clips"]  # a 7 s plan is one 8 s clip
    n0 = len(video_server.log)

    df = R.verify_and_reflect(paths, "pcg", run, max_rounds=1, utility=stub_utility(paths), progress=False)

    v0 = read_model(dst / "verify" / "round_0" / "verification.json", V.Verification)
    assert any(v.rule == "other_brand" and v.evidence.slot == target and v.evidence.field == "composition"
               for v in v0.violations)
    rd = dst / "verify" / "round_1"
    ans = json.loads((rd / "directives.json").read_text())
    fix = [d for d in ans["directives"] if d["kind"] == "replace_text" and d["slot"] == target]
    assert fix and fix[0]["field"] == "composition" and brand not in fix[0]["new"]
    calls = [e for e in video_server.log[n0:] if e["route"] in ("sora.create", "sora.remix", "veo.create")]
    assert len(calls) == 1  # one API edit, nothing else generated
    if operation == "remix":
        assert calls[0]["route"] == "sora.remix" and calls[0]["id"] == clip["job"]  # the finished clip's edit
        prompt = calls[0]["body"]["prompt"]
    else:
        assert calls[0]["instance_keys"] == ["prompt", "video"]  # Veo's extension of the footage before the slot
        sp = span_of(plan, target)
        assert calls[0]["video_seconds"] == pytest.approx(sp.start / req.fps, abs=1 / clip["fps"])  # slots before
        prompt = calls[0]["prompt"]
    assert brand not in prompt and fix[0]["new"].rstrip(".") in prompt
    pman = read_model(rd / "producer.json", ProducerManifest)
    [rec] = pman.settings["edits"]
    assert rec["operation"] == operation and rec["slots"] == [target] and rec["round"] == "round_1"
    assert pman.cost_usd == pytest.approx(sman.cost_usd + rec["cost_usd"]) and rec["cost_usd"] > 0
    diffs = frame_diffs(dst / "creative.mp4", rd / "creative.mp4")
    sp = span_of(plan, target)
    assert np.r_[diffs[:sp.start], diffs[sp.stop:]].max() < TOL and diffs[sp.start:sp.stop].min() > TOL
    row = df[df["round"] == 1].iloc[0]
    assert row["slots_rerendered"] == str(target) and row["frames_rerendered"] == sp.n
    assert row["decision"] == "accept", df[["round", "decision", "rules"]]


def test_learned_head_ablation_reports_what_the_switch_would_change(paths):
    """A health claim no rule holds is accepted as verified; the ablation reads the same round-0 creatives with the
    learned head and reports the finding and the decision it would give, writing nothing."""
    d = plant(paths, "furnace", s1_on_screen_text="Turns your metabolism into a furnace")
    R.verify_and_reflect(paths, "pcg", RUN, max_rounds=2, utility=stub_utility(paths), progress=False)
    ver = d / "verify" / "round_0" / "verification.json"
    before = {p: p.stat().st_mtime_ns for p in paths.run_dir("pcg", RUN).rglob("*") if p.is_file()}
    ab = R.learned_head_ablation(paths, "pcg", RUN).set_index("pair_id")
    assert {p: p.stat().st_mtime_ns for p in paths.run_dir("pcg", RUN).rglob("*") if p.is_file()} == before
    row = ab.loc[d.name]
    assert read_model(ver, Verification).thresholds["learned_head"] == 0
    assert (row["decision"], row["decision_with_head"]) == ("accept", "revise") and row["safety"] >= 1
    clean = ab.loc[PAIR]
    assert clean["head_findings"] == 0 and clean["decision_with_head"] == clean["decision"]
