"""The Reflector (paper section 3.2.4) and the Verifier -> Reflector -> edit loop over a run.

**Attribution and directives.** :func:`reflect` sends one ``reflector.directives`` request (the verification's
violations with their evidence, the utility scores, the plan and the product record in ``context``) through
a backend string; the answer (:class:`ReflectorAnswer`) is a list of attribution lines and minimal, typed
:class:`~nextads_lib.schemas.Directive` s. The ``offline`` backend answers with :func:`rule_directives`,
documented rules:

=====================================================  ===========  =======================================
finding (verifier rule)                                 level        directive(s)
=====================================================  ===========  =======================================
unsupported claim / number / superlative / deceptive,    plan         ``replace_text`` of the slot's field
unsafe word, forbidden claim, personal data, protected                 (the offending phrase removed, else a
attribute, other brand in narration / on-screen text                  safe line from the product record);
                                                                       ``change_hook`` for the hook; severe
                                                                       ones also ``add_constraint`` (forbid)
unrecorded / unlicensed / foreign asset in a slot        plan         ``swap_asset`` to a licensed product image
label missing in frames                                  execution    ``relabel`` (burn it into those frames)
on-screen text not rendered                              execution    ``recaption`` (re-render the slot)
text in the frames the plan never had (OCR)              execution    ``recaption`` when it is the slot's own text
                                                                       garbled, else ``regenerate_slot`` (without it)
low personalization (utility)                            plan         ``change_hook`` (another hook template)
low product alignment (utility)                          plan         ``replace_text``: a selling point on screen
low video quality (utility)                              execution    ``regenerate_slot`` with a static camera
=====================================================  ===========  =======================================

**Routing** (:data:`ROUTES`): ``replace_text``, ``change_hook``, ``add_constraint``, ``swap_asset`` go to the
Director: a patch of ``plan.json`` re-validated by :func:`nextads_lib.director.validate_storyboard` (plus the
added constraints); a patch that adds validation errors is refused. The slots whose rendered content changed
are then re-rendered by the Producer's slot editor (:mod:`nextads_lib.producer.edit`), nothing else. For a
generative Producer (sora, veo, wan) a slot whose composition changed is re-rendered too (the composition is its
clip's prompt); the edit operations used (remix, extension, regeneration) and their cost go into the round's
``producer.json`` (``settings["edits"]``) and the round's cost.
``recaption``, ``regenerate_slot``, ``relabel`` and ``trim_slot`` go to the Producer directly.

**Loop.** :func:`verify_and_reflect` verifies each pair's creative (round 0), and while it is not accepted
runs up to ``max_rounds`` rounds: reflect, apply, verify again. Every round is written to
``<pair_dir>/verify/round_<k>/`` (``verification.json``; for k >= 1 also ``directives.json``, ``round.json``,
the patched ``plan.json`` and the edited ``creative.mp4``); the original creative is never overwritten. An
accepted creative is released by ``<pair_dir>/released.json`` (:class:`~nextads_lib.schemas.ReleaseRecord`).
One row per pair and round goes to ``paths.results / "verify_<task>.parquet"``. A finished pair is recorded
in the cache under the key of its inputs and settings, so a rerun skips it.
"""

from __future__ import annotations

import re
import shutil
import time
from pathlib import Path
from typing import Any

from pydantic import Field

from . import verifier as V
from .backends import ModelRequest, TextPart, get_backend, register_offline
from .config import AI_LABEL, StudyPaths, display_path
from .schemas import (
    BenchPair,
    Directive,
    Grounding,
    PairManifest,
    Product,
    ProductLibrary,
    ReleaseRecord,
    RoundRecord,
    Schema,
    Storyboard,
    UserHistory,
    Verification,
)
from .store import Cache, content_key, read_json, read_jsonl, read_model, write_json

CODE_VERSION = "reflector-3"

#: directive kind -> (target, level)
ROUTES: dict[str, tuple[str, str]] = {
    "replace_text": ("director", "plan"),
    "change_hook": ("director", "plan"),
    "add_constraint": ("director", "plan"),
    "swap_asset": ("director", "plan"),
    "recaption": ("producer", "execution"),
    "relabel": ("producer", "execution"),
    "trim_slot": ("producer", "execution"),
    "regenerate_slot": ("producer", "execution"),
}

#: utility dimensions below this (0..1) get a directive of their own
UTILITY_FLOOR = 0.45

REFLECT_SYSTEM = (
    "You are the Reflector of a video-advertising system. A creative was verified; you get the violations with "
    "their evidence (slot, field, offending text, frame), the utility scores, the storyboard and the product "
    "record. Attribute each problem to the plan (wrong hook, weak matching, missing constraint, unsupported "
    "claim in the script) or to the execution (product drift, text not rendered, label missing, artifacts in a "
    "slot) and answer with the smallest set of typed directives that fixes them: replace_text (slot, field, new), "
    "change_hook (new), add_constraint (forbid: strings), swap_asset (slot, old, new), recaption (slot), "
    "relabel, trim_slot (slot, frames), regenerate_slot (slot, field='camera', new). Use only the product's own "
    "selling points, slogan and facts in new text; never add personal data, other brands or new numbers. "
    "Answer with JSON only."
)


class ReflectorAnswer(Schema):
    """What the backend answers for ``reflector.directives``."""

    attribution: list[str] = Field(default_factory=list)
    directives: list[Directive] = Field(default_factory=list)


# ------------------------------------------------------------------------------------------- offline rules
def _short(text: str, n: int) -> str:
    """At most ``n`` words: the first clause when it fits, else the first ``n`` words."""
    ws = text.split()
    if len(ws) <= n:
        return text
    head = re.split(r"[,;:.!?]", text, maxsplit=1)[0].split()
    return " ".join(head if 0 < len(head) <= n else ws[:n]).rstrip(",;:")


def _remove(text: str, phrase: str) -> str:
    """``text`` without ``phrase`` (case-insensitive, whole words; an @handle with its @)."""
    out = re.sub(r"(?i)(?<![A-Za-z0-9_])" + re.escape(phrase) + r"(?![A-Za-z0-9_])", "", text)
    out = re.sub(r"\s+([,.!?;:])", r"\1", out)
    out = re.sub(r"\s{2,}", " ", out).strip(" ,;:-·")
    return out


def _safe_line(prod: dict[str, Any], plan: dict[str, Any], field: str, slot_index: int | None) -> str:
    """A line from the product record the plan does not already show (a selling point, else the slogan)."""
    used = " ".join(f"{s['narration']} {s['on_screen_text']}" for s in plan["slots"]).lower()
    points = [p for p in prod["selling_points"] if p.lower() not in used] or list(prod["selling_points"])
    k = (slot_index or 0) % len(points)
    first = min(s["index"] for s in plan["slots"]) if plan["slots"] else 0
    if field == "on_screen_text":
        return prod["name"] if slot_index == first else _short(points[k], 6)
    if field == "cta":
        return f"Get {prod['name']} today"
    if field == "composition":
        return f"{prod['name']} on a clean set in brand colours"
    return f"{prod['name']}: {points[k][:1].lower() + points[k][1:]}."


def _drop_clauses(text: str, phrase: str) -> str:
    """``text`` without the clauses (split at , ; : . ! ?) that contain ``phrase``."""
    parts = re.split(r"(?<=[,;:.!?])\s+", text)
    keep = [p for p in parts if not re.search(r"(?i)(?<![A-Za-z0-9_])" + re.escape(phrase) + r"(?![A-Za-z0-9_])", p)]
    out = " ".join(keep).strip(" ,;:-·")
    return out + "." if out and out[-1] not in ".!?" and text.rstrip()[-1:] in ".!?" else out


def _clean_text(text: str, tokens: list[str], prod: dict[str, Any], plan: dict[str, Any], field: str,
                slot_index: int | None, personal: set[str] = frozenset()) -> str:
    """The text with personal tokens removed and the clauses of every other offending phrase dropped; a safe
    line from the product record when too little is left."""
    out = text
    for t in tokens:
        out = _remove(out, t) if t in personal else _drop_clauses(out, t)
    ok = len(re.findall(r"[A-Za-z]{2,}", out)) >= 2 and not any(re.search(r"(?i)" + re.escape(t), out) for t in tokens)
    return out if ok else _safe_line(prod, plan, field, slot_index)


def _d(kind: str, **kw: Any) -> Directive:
    target, level = ROUTES[kind]
    return Directive(kind=kind, target=target, level=level, **kw)


def rule_directives(ctx: dict[str, Any]) -> ReflectorAnswer:
    """The offline Reflector: the rules of the module docstring over a ``reflector.directives`` context."""
    ver, plan, prod = ctx["verification"], ctx["plan"], ctx["product"]
    slots = {s["index"]: s for s in plan["slots"]}
    last = max(slots) if slots else 0
    attribution: list[str] = []
    out: list[Directive] = []
    text_fix: dict[tuple[int | None, str], list[str]] = {}
    rule_of: dict[tuple[int | None, str], list[str]] = {}
    forbid: list[str] = []
    personal: set[str] = set()
    label_frames: list[int] = []
    for c in ver["compliance"]:
        for v in c["violations"]:
            ev, rule, check = v["evidence"], v["rule"], v["check"]
            where = f"slot {ev.get('slot')} {ev.get('field')}" if ev.get("slot") is not None else (ev.get("field") or "creative")
            if check in ("safety", "privacy", "fairness") or rule == "other_brand":
                if ev.get("field") in ("narration", "on_screen_text", "hook", "cta", "composition") and ev.get("text"):
                    key = (ev.get("slot"), ev["field"])
                    text_fix.setdefault(key, []).append(ev["text"])
                    rule_of.setdefault(key, []).append(rule)
                    if rule == "personal_data":
                        personal.add(ev["text"])
                    kind = ("unsupported claim in the script" if check == "safety" else
                            "missing constraint (personal data)" if check == "privacy" else
                            "missing constraint (protected attribute)" if check == "fairness" else
                            "missing constraint (another brand)")
                    attribution.append(f"plan-level: {kind}: '{ev['text']}' in {where}")
                    if v["severity"] == "severe" and rule in ("personal_data", "other_brand", "forbidden_claim",
                                                              "protected_attribute_targeting", "unsafe_content"):
                        forbid.append(ev["text"])
                elif rule == "foreign_user_visual" and ev.get("asset_id"):
                    for s in plan["slots"]:
                        if ev["asset_id"] in s["assets"]:
                            out.append(_d("swap_asset", slot=s["index"], field="assets", old=ev["asset_id"],
                                          new="product_0", reason=v["message"], rule=rule))
                    attribution.append(f"plan-level: grounding uses a visual that is not the user's: {ev['asset_id']}")
            elif check == "copyright" and rule in ("unrecorded_asset", "missing_license", "foreign_asset"):
                aid = ev.get("asset_id")
                for s in plan["slots"]:
                    if aid and aid in s["assets"] and (ev.get("slot") is None or ev.get("slot") == s["index"]):
                        out.append(_d("swap_asset", slot=s["index"], field="assets", old=aid, new="product_0",
                                      reason=v["message"], rule=rule))
                attribution.append(f"plan-level: asset without licence record '{aid}'")
            elif check == "disclosure" and rule == "label_missing":
                if ev.get("frame_index") is not None:
                    label_frames.append(int(ev["frame_index"]))
            elif check == "rendering" and rule == "text_not_rendered":
                out.append(_d("recaption", slot=ev.get("slot"), field="on_screen_text", new=ev.get("text", ""),
                              reason=v["message"], rule=rule))
                attribution.append(f"execution-level: text not rendered in slot {ev.get('slot')}")
            elif check == "rendering" and rule == "unplanned_text" and ev.get("slot") is not None:
                # text in the frames the plan never had: partly the slot's own text (garbled) -> draw it again;
                # else invented text -> regenerate the slot's picture without it
                own = " ".join(str(slots.get(ev["slot"], {}).get(f) or "") for f in ("on_screen_text", "narration"))
                garbled = _shares_words(ev.get("text", ""), own)
                out.append(_d("recaption" if garbled else "regenerate_slot", slot=ev["slot"],
                              field="on_screen_text" if garbled else "frame_text", old=ev.get("text", ""),
                              new=slots.get(ev["slot"], {}).get("on_screen_text", "") if garbled else "",
                              reason=v["message"], rule=rule))
                attribution.append(f"execution-level: {'garbled' if garbled else 'unplanned'} text in the frames of "
                                   f"slot {ev['slot']}: '{ev.get('text', '')}'")
    for (slot, field), toks in text_fix.items():
        rules = ",".join(dict.fromkeys(rule_of[(slot, field)]))
        if field == "hook":
            new = _clean_text(plan["hook"], toks, prod, plan, "hook", slot, personal)
            out.append(_d("change_hook", slot=slots and min(slots), field="hook", old=plan["hook"], new=new,
                          reason=f"remove {toks}", rule=rules))
        elif field == "cta":
            out.append(_d("replace_text", slot=last, field="cta", old=plan["cta"],
                          new=_clean_text(plan["cta"], toks, prod, plan, "cta", last, personal), reason=f"remove {toks}", rule=rules))
        elif slot in slots:
            old = slots[slot][field]
            out.append(_d("replace_text", slot=slot, field=field, old=old,
                          new=_clean_text(old, toks, prod, plan, field, slot, personal), reason=f"remove {toks}", rule=rules))
    if forbid:
        out.append(_d("add_constraint", forbid=sorted(set(forbid)), reason="never again in this plan",
                      rule="missing_constraint"))
    if label_frames:
        out.append(_d("relabel", reason=f"'{AI_LABEL}' missing in {len(label_frames)} sampled frames "
                      f"(first {min(label_frames)})", rule="label_missing"))
        attribution.append(f"execution-level: label missing in {len(label_frames)} sampled frames")
    # utility
    util = {u["dimension"]: u.get("score") for u in ver.get("utility", [])}
    if util.get("personalization") is not None and util["personalization"] < UTILITY_FLOOR and not any(
            d.kind == "change_hook" for d in out):
        out.append(_d("change_hook", slot=min(slots) if slots else 0, field="hook", old=plan["hook"],
                      new=_next_hook(plan, prod, ctx.get("profile")), reason=f"personalization {util['personalization']:.2f}",
                      rule="personalization"))
        attribution.append(f"plan-level: weak hook / matching (personalization {util['personalization']:.2f})")
    if util.get("product_alignment") is not None and util["product_alignment"] < UTILITY_FLOOR:
        body = [s for s in plan["slots"] if s["role"] == "body"] or plan["slots"]
        s = body[0]
        if not any(d.slot == s["index"] and d.field == "on_screen_text" for d in out):
            out.append(_d("replace_text", slot=s["index"], field="on_screen_text", old=s["on_screen_text"],
                          new=_short(f"{prod['name']}: {prod['selling_points'][0]}", 6),
                          reason=f"product alignment {util['product_alignment']:.2f}", rule="product_alignment"))
            attribution.append(f"plan-level: product not shown clearly (alignment {util['product_alignment']:.2f})")
    if util.get("video_quality") is not None and util["video_quality"] < UTILITY_FLOOR:
        moving = [s for s in plan["slots"] if s["camera"] != "static"]
        if moving:
            s = moving[0]
            out.append(_d("regenerate_slot", slot=s["index"], field="camera", old=s["camera"], new="static",
                          reason=f"video quality {util['video_quality']:.2f}", rule="video_quality"))
            attribution.append(f"execution-level: artifacts / unstable motion in slot {s['index']}")
    return ReflectorAnswer(attribution=list(dict.fromkeys(attribution)), directives=out)


def _shares_words(read: str, planned: str) -> bool:
    """Does an OCR line share a word (4+ letters, look-alikes folded, one OCR slip allowed) with planned text?"""
    import difflib  # noqa: PLC0415

    from .compliance.text import fold, tokens  # noqa: PLC0415

    words = [fold(w) for w in tokens(planned) if len(w) >= 4]
    return any(difflib.get_close_matches(fold(w), words, n=1, cutoff=0.8) for w in tokens(read) if len(w) >= 4)


def _next_hook(plan: dict[str, Any], prod: dict[str, Any], profile: dict[str, Any] | None) -> str:
    """Another hook: the user's tone's templates (or the generic ones) other than the current hook."""
    from .director import GENERIC_HOOKS, SCENARIOS, TONE_TEMPLATES  # noqa: PLC0415

    tone = ((profile or {}).get("presentation") or {}).get("tone", "informative")
    scene = SCENARIOS.get(plan.get("matched_topic") or "", ("every day", ""))[0]
    cands = [t.format(scene=scene, name=prod["name"], brand=prod["brand"], slogan=prod["slogan"])
             for t in TONE_TEMPLATES.get(tone, TONE_TEMPLATES["informative"])["hook"]]
    cands += [t.format(name=prod["name"], slogan=prod["slogan"]) for t in GENERIC_HOOKS]
    cands = [c[:1].upper() + c[1:] for c in cands if c.strip() and c.strip() != plan["hook"].strip()]
    return cands[0] if cands else f"Meet {prod['name']}."


@register_offline("reflector.directives")
def offline_directives(req: ModelRequest) -> ReflectorAnswer:
    """Offline Reflector: :func:`rule_directives` over the request's context."""
    return rule_directives(req.context)


def build_request(verification: Verification, plan: Storyboard, product: Product,
                  profile: dict[str, Any] | None = None) -> ModelRequest:
    """The ``reflector.directives`` request (usage and costs left out of the context)."""
    from .director import product_brief  # noqa: PLC0415

    ver = verification.model_dump(mode="json", exclude={"usage", "cost_usd", "video_path"})
    ctx = {"verification": ver, "plan": plan.model_dump(mode="json"), "product": product_brief(product),
           "profile": profile, "kinds": sorted(ROUTES), "code_version": CODE_VERSION}
    lines = [f"Decision: {verification.decision}. Rationales:"] + [f"- {r}" for r in verification.rationales]
    for v in verification.violations:
        e = v.evidence
        lines.append(f"* {v.check}/{v.rule} ({v.severity}): {v.message}; slot={e.slot} field={e.field} "
                     f"text={e.text!r} frame={e.frame_index} asset={e.asset_id}")
    lines.append("Utility: " + ", ".join(f"{u.dimension}={u.score}" for u in verification.utility))
    lines.append("Storyboard: " + plan.model_dump_json())
    lines.append(f"Product: {product.name} by {product.brand}; selling points: {'; '.join(product.selling_points)}; "
                 f"facts: {product.facts}; slogan: {product.slogan}")
    return ModelRequest(task="reflector.directives", system=REFLECT_SYSTEM, parts=[TextPart("\n".join(lines))],
                        schema=ReflectorAnswer, context=ctx, item=f"pair {verification.pair_id} round {verification.round}")


def reflect(verification: Verification, plan: Storyboard, product: Product, backend: Any,
            profile: dict[str, Any] | None = None) -> ReflectorAnswer:
    """Attribution and directives for a non-accepted creative; every directive's target/level is re-derived
    from its kind (:data:`ROUTES`), so a model cannot mis-route one."""
    ans: ReflectorAnswer = backend.complete(build_request(verification, plan, product, profile)).value
    fixed = [d.model_copy(update={"target": ROUTES[d.kind][0], "level": ROUTES[d.kind][1]}) for d in ans.directives]
    return ans.model_copy(update={"directives": fixed})


# ---------------------------------------------------------------------------------------------- applying
def patch_plan(plan: Storyboard, directives: list[Directive]
               ) -> tuple[Storyboard, set[int], list[str], list[str], list[str], set[int]]:
    """Apply the Director's directives to ``plan``: returns the patched plan, the slots whose rendered content
    changed, the constraints (forbidden strings) added, what changed, what was skipped, and the slots whose
    pictures (not only text) changed."""
    slots = {s.index: s for s in plan.slots}
    hook, cta = plan.hook, plan.cta
    changed: set[int] = set()
    forbid: list[str] = []
    applied, skipped = [], []
    first, last = min(slots), max(slots)
    base_changed: set[int] = set()
    for d in directives:
        if d.target != "director":
            continue
        if d.kind == "replace_text":
            if d.field == "cta":
                applied.append(f"cta: {cta!r} -> {d.new!r}")
                cta = d.new
                changed.add(last)
            elif d.field == "hook":
                applied.append(f"hook: {hook!r} -> {d.new!r}")
                hook = d.new
            elif d.slot in slots and d.field in ("narration", "on_screen_text", "composition"):
                old = getattr(slots[d.slot], d.field)
                slots[d.slot] = slots[d.slot].model_copy(update={d.field: d.new})
                applied.append(f"slot {d.slot} {d.field}: {old!r} -> {d.new!r}")
                if d.field != "composition":  # the composition is a description, not rendered text
                    changed.add(d.slot)
            else:
                skipped.append(f"replace_text: no slot {d.slot} / field {d.field}")
        elif d.kind == "change_hook":
            s0 = slots[first]
            new_hook = d.new.strip() or hook
            upd = {"on_screen_text": _short(new_hook, 6)}
            if hook.strip() and hook.strip() in s0.narration:
                upd["narration"] = s0.narration.replace(hook.strip(), new_hook)
            else:
                upd["narration"] = new_hook
            applied.append(f"hook: {hook!r} -> {new_hook!r} (slot {first} text follows)")
            slots[first] = s0.model_copy(update=upd)
            hook = new_hook
            changed.add(first)
        elif d.kind == "add_constraint":
            forbid += [f for f in d.forbid if f]
            applied.append(f"constraint: never {d.forbid}")
        elif d.kind == "swap_asset":
            if d.slot in slots and d.old in slots[d.slot].assets:
                assets = [d.new if a == d.old else a for a in slots[d.slot].assets]
                slots[d.slot] = slots[d.slot].model_copy(update={"assets": list(dict.fromkeys(assets))})
                applied.append(f"slot {d.slot} asset {d.old} -> {d.new}")
                changed.add(d.slot)
                base_changed.add(d.slot)
            else:
                skipped.append(f"swap_asset: slot {d.slot} does not show '{d.old}'")
    new = plan.model_copy(update={"hook": hook, "cta": cta, "slots": [slots[i] for i in sorted(slots)]})
    return new, changed, forbid, applied, skipped, base_changed


def constraint_errors(plan: Storyboard, forbid: list[str]) -> list[str]:
    """Added constraints: none of the forbidden strings may appear in the plan's texts."""
    errs = []
    for u in V.text_units(plan):
        for f in forbid:
            if f.lower() in u.text.lower():
                errs.append(f"constraint: '{f}' in slot {u.slot} {u.field}")
    return errs


def apply_directives(src_dir: Path, round_dir: Path, directives: list[Directive], *, product: Product,
                     history: UserHistory | None, task: str, cache_dir: Path | None,
                     constraints: list[str] | None = None) -> dict[str, Any]:
    """Execute ``directives`` on the creative in ``src_dir`` (the original pair dir or the previous round) and
    write the revised creative to ``round_dir``: ``plan.json`` (patched and re-validated), ``creative.mp4``
    (only the affected slots re-rendered; a copy when nothing visible changed), ``grounding.json``,
    ``producer.json`` and, for PCI, ``integration.json`` + ``integrated.mp4`` (the re-rendered frames spliced at
    the seam). Returns what changed (``applied``, ``skipped``, ``slots``, ``frames``, ``constraints``)."""
    from . import director  # noqa: PLC0415
    from .producer import edit  # noqa: PLC0415

    round_dir.mkdir(parents=True, exist_ok=True)
    plan0 = read_model(src_dir / "plan.json", Storyboard)
    grounding = read_model(src_dir / "grounding.json", Grounding)
    asset_ids = {s.asset_id for s in grounding.sources}
    plan, changed, forbid, applied, skipped, base_changed = patch_plan(plan0, directives)
    forbid = sorted(set((constraints or []) + forbid))
    if plan != plan0:
        def errs(p: Storyboard) -> set[str]:
            return set(director.validate_storyboard(p, product, history=history, duration_s=p.duration_s,
                                                    asset_ids=asset_ids)) | set(constraint_errors(p, forbid))
        new_errs = errs(plan) - errs(plan0)
        if new_errs:
            skipped.append("plan patch refused: " + "; ".join(sorted(new_errs)))
            plan, changed, base_changed = plan0, set(), set()
            applied = [a for a in applied if a.startswith("constraint")]
    # producer directives
    relabel = False
    trims: list[Directive] = []
    for d in directives:
        if d.target != "producer":
            continue
        if d.kind == "recaption" and d.slot is not None:
            changed.add(d.slot)
            applied.append(f"slot {d.slot}: re-caption (re-render its text)")
        elif d.kind == "regenerate_slot" and d.slot is not None:
            s = next((x for x in plan.slots if x.index == d.slot), None)
            if s is None:
                skipped.append(f"regenerate_slot: no slot {d.slot}")
                continue
            if d.field == "camera" and d.new:
                from .topics import CAMERA_MOVES  # noqa: PLC0415

                if d.new in CAMERA_MOVES:
                    plan = plan.model_copy(update={"slots": [x.model_copy(update={"camera": d.new}) if x.index == d.slot
                                                             else x for x in plan.slots]})
            changed.add(d.slot)
            base_changed.add(d.slot)
            applied.append(f"slot {d.slot}: regenerate" + (f" with camera {d.new}" if d.new else ""))
        elif d.kind == "relabel":
            relabel = True
        elif d.kind == "trim_slot":
            if task == "pci":
                skipped.append("trim_slot: not done for PCI (the integrated video's seams would move)")
            else:
                trims.append(d)
    req, man = edit.producer_request(src_dir, plan)
    if not man.backend.startswith("compositor"):
        # a generative Producer draws the slot's composition (it is the clip's prompt): a new one is a new picture
        before = {x.index: x.composition for x in plan0.slots}
        drawn = {x.index for x in plan.slots if x.index in before and x.composition != before[x.index]}
        changed |= drawn
        base_changed |= drawn
    src_video = src_dir / "creative.mp4"
    out_video = round_dir / "creative.mp4"
    report: dict[str, Any] = {"slots": [], "frames": 0, "notes": []}
    cur = src_video
    producer = None
    try:
        if changed or relabel or trims:
            producer = edit.producer_for(man, cache_dir)
        if changed:
            rep = edit.edit_slots(cur, req.model_copy(update={"storyboard": plan}), sorted(changed), out_video, producer,
                                  base_changed=sorted(base_changed & changed), manifest=man)  # Sora: the API's remix
            report["slots"], report["frames"] = rep.slots, len(rep.frames_rendered)
            report["frame_indices"] = rep.frames_rendered
            report["edits"] = rep.edits
            if rep.note:
                applied.append(f"producer edit: {rep.note}")
            cur = out_video
        if relabel:
            tmp = round_dir / "creative.relabel.mp4"
            rep = edit.relabel(cur, req, tmp, producer)
            tmp.replace(out_video)
            cur = out_video
            applied.append(f"relabel: {rep.note}")
            report["relabelled_frames"] = rep.frames_rendered
        for d in trims:
            tmp = round_dir / "creative.trim.mp4"
            plan, rep = edit.trim_slot(cur, req.model_copy(update={"storyboard": plan}), int(d.slot or 0),
                                       int(d.frames or 1), tmp, producer)
            tmp.replace(out_video)
            cur = out_video
            applied.append(f"trim: {rep.note}")
    except edit.EditError as e:
        skipped.append(f"producer edit not possible: {e}")
    if cur == src_video:
        shutil.copyfile(src_video, out_video)
    elif not trims:  # check by decoding that nothing outside the edited frames changed beyond encoder tolerance
        import numpy as np  # noqa: PLC0415

        from .media import read_frames  # noqa: PLC0415

        a, b = read_frames(src_video), read_frames(out_video)
        touched = set(report.get("frame_indices", [])) | set(report.get("relabelled_frames", []))
        keep = [i for i in range(min(len(a), len(b))) if i not in touched]
        if len(a) == len(b) and keep:
            d = np.abs(a[keep].astype(np.float32) - b[keep].astype(np.float32)).mean(axis=(1, 2, 3))
            report["outside_max_diff"] = round(float(d.max()), 3)
            applied.append(f"decoded check: {len(keep)} frames outside the edit differ by at most "
                           f"{float(d.max()):.2f} grey levels (mean abs; re-encoding only)")
    write_json(round_dir / "plan.json", plan)
    write_json(round_dir / "grounding.json", grounding)
    from .media import probe  # noqa: PLC0415

    info = probe(out_video)
    # the manifest keeps every edit made since the render (operation: compositor / remix / extend / regenerate)
    edits = list(man.settings.get("edits") or []) + [{**e, "round": round_dir.name} for e in report.get("edits", [])]
    edit_cost = sum(float(e.get("cost_usd", 0.0)) for e in report.get("edits", []))
    write_json(round_dir / "producer.json", man.model_copy(update={
        "video_path": display_path(out_video), "n_frames": info.n_frames,
        "duration_s": round(info.n_frames / man.fps, 6), "settings": {**man.settings, "edits": edits},
        "cost_usd": round(man.cost_usd + edit_cost, 6)}))
    # PCI: the integrated video gets the same frames at its seam
    if task == "pci" and (src_dir / "integration.json").is_file():
        shutil.copyfile(src_dir / "integration.json", round_dir / "integration.json")
        for extra in ("host_summary.json", "decision.json"):
            if (src_dir / extra).is_file():
                shutil.copyfile(src_dir / extra, round_dir / extra)
        integ = read_json(src_dir / "integration.json")
        touched = sorted(set(report.get("frame_indices", [])) | set(report.get("relabelled_frames", [])))
        if (src_dir / "integrated.mp4").is_file():
            if touched and producer is not None:
                try:
                    off = int(round(float(integ["seam_in_s"]) * man.fps))
                    edit.splice_into(src_dir / "integrated.mp4", out_video, off, touched, round_dir / "integrated.mp4",
                                     man.fps, producer)
                except (edit.EditError, KeyError, ValueError) as e:
                    skipped.append(f"integrated video not updated: {e}")
                    shutil.copyfile(src_dir / "integrated.mp4", round_dir / "integrated.mp4")
            else:
                shutil.copyfile(src_dir / "integrated.mp4", round_dir / "integrated.mp4")
    return {"applied": applied, "skipped": skipped, "slots": report["slots"], "frames": report["frames"],
            "constraints": forbid, "outside_max_diff": report.get("outside_max_diff"),
            "edits": report.get("edits", []), "edit_cost_usd": round(edit_cost, 6)}


# --------------------------------------------------------------------------------------------------- loop
COLUMNS = ["task", "run", "system", "director_backend", "producer_backend", "verifier_backend", "vq_backend",
           "reflector_backend", "pair_id", "user_id", "product_id", "round", "decision", "utility_score",
           "video_quality", "personalization", "product_alignment", "context_alignment", "utility_proxy",
           "n_violations", "n_severe", "checks_failed", "rules", "n_directives", "directives", "targets",
           "slots_rerendered", "frames_rerendered", "cost_usd", "released", "error"]


def _row(ver: Verification | None, man: PairManifest, task: str, run: str, verifier_backend: str,
         reflector_backend: str, rnd: int, rec: RoundRecord | None = None, error: str | None = None) -> dict[str, Any]:
    util = {u.dimension: u.score for u in ver.utility} if ver is not None else {}
    viol = ver.violations if ver is not None else []
    return {
        "task": task, "run": run, "system": man.system, "director_backend": man.director_backend,
        "producer_backend": man.producer_backend, "verifier_backend": verifier_backend,
        "vq_backend": ver.vq_backend if ver is not None else "", "reflector_backend": reflector_backend,
        "pair_id": man.pair_id, "user_id": man.user_id, "product_id": man.product_id, "round": rnd,
        "decision": ver.decision if ver is not None else "error",
        "utility_score": ver.utility_score if ver is not None else None,
        "video_quality": util.get("video_quality"), "personalization": util.get("personalization"),
        "product_alignment": util.get("product_alignment"), "context_alignment": util.get("context_alignment"),
        "utility_proxy": all(u.proxy for u in ver.utility) if ver is not None and ver.utility else True,
        "n_violations": len(viol), "n_severe": sum(v.severity == "severe" for v in viol),
        "checks_failed": ",".join(c.check for c in ver.compliance if not c.passed) if ver is not None else "",
        "rules": ",".join(sorted({v.rule for v in viol})),
        "n_directives": len(rec.directives) if rec else 0,
        "directives": ",".join(d.kind for d in rec.directives) if rec else "",
        "targets": ",".join(sorted({d.target for d in rec.directives})) if rec else "",
        "slots_rerendered": ",".join(str(s) for s in rec.slots_rerendered) if rec else "",
        "frames_rerendered": rec.frames_rerendered if rec else 0,
        "cost_usd": round((ver.cost_usd if ver is not None else 0.0) + (rec.cost_usd if rec else 0.0), 6),
        "released": False, "error": error,
    }


def _pair_key(settings: dict[str, Any], pair_dir: Path, product: Product, history: UserHistory | None) -> str:
    files = [pair_dir / f for f in ("plan.json", "creative.mp4", "grounding.json", "producer.json",
                                    "integrated.mp4", "integration.json") if (pair_dir / f).is_file()]
    return content_key("verify_pair", CODE_VERSION, V.CODE_VERSION, settings, pair_dir.name, files, product, history)


def verify_pair(pair_dir: Path, man: PairManifest, *, task: str, run: str, product: Product,
                history: UserHistory | None, library: ProductLibrary, utility: V.UtilityAdapter, reflector: Any,
                max_rounds: int, cache_dir: Path | None, thresholds: dict[str, float] | None = None,
                vq_cache: Any = None, cert_dir: Path | None = None) -> list[dict[str, Any]]:
    """Round 0 and up to ``max_rounds`` reflect-edit-verify rounds of one pair; returns its rows."""
    profile = None
    try:
        from .pcg import read_profile  # noqa: PLC0415

        if (pair_dir / "profile.json").is_file():
            profile = read_profile(pair_dir).model_dump(mode="json")
    except Exception:  # noqa: BLE001 - the profile only picks hook templates
        profile = None
    vdir = pair_dir / "verify"
    rows = []
    ver = V.verify_creative(pair_dir, pair_id=man.pair_id, task=task, run=run, product=product, history=history,
                            library=library, utility=utility, round_index=0, thresholds=thresholds, cache=vq_cache)
    write_json(vdir / "round_0" / "verification.json", ver)
    rows.append(_row(ver, man, task, run, utility.judge_backend_name, reflector.name, 0))
    src = pair_dir
    constraints: list[str] = []
    for k in range(1, max_rounds + 1):
        if ver.decision == "accept":
            break
        t0 = time.perf_counter()
        rdir = vdir / f"round_{k}"
        n0 = len(reflector.usage)
        plan = read_model(src / "plan.json", Storyboard)
        rec = RoundRecord(pair_id=man.pair_id, round=k, decision_before=ver.decision, reflector_backend=reflector.name,
                          utility_before=ver.utility_score, violations_before=len(ver.violations))
        edit_cost = 0.0
        try:
            ans = reflect(ver, plan, product, reflector, profile)
            rec.attribution, rec.directives = ans.attribution, ans.directives
            write_json(rdir / "directives.json", ans)
            if not ans.directives:
                rec.failure = "the Reflector found nothing to change"
            else:
                res = apply_directives(src, rdir, ans.directives, product=product, history=history, task=task,
                                       cache_dir=cache_dir, constraints=constraints)
                constraints = res["constraints"]
                rec.applied, rec.skipped = res["applied"], res["skipped"]
                rec.slots_rerendered, rec.frames_rerendered = res["slots"], res["frames"]
                edit_cost = float(res.get("edit_cost_usd", 0.0))
        except Exception as e:  # noqa: BLE001 - recorded against the pair's round
            rec.failure = f"{type(e).__name__}: {e}"
        usage = reflector.usage[n0:]
        rec.cost_usd = round(sum(u.cost_usd for u in usage) + edit_cost, 6)  # the Reflector's calls and the edits'

        if rec.failure or not (rdir / "creative.mp4").is_file():
            rec.seconds = round(time.perf_counter() - t0, 3)
            write_json(rdir / "round.json", rec)
            rows.append(_row(None, man, task, run, utility.judge_backend_name, reflector.name, k, rec,
                             error=rec.failure or "no revised creative"))
            break
        new = V.verify_creative(rdir, pair_id=man.pair_id, task=task, run=run, product=product, history=history,
                                library=library, utility=utility, round_index=k, thresholds=thresholds, cache=vq_cache)
        write_json(rdir / "verification.json", new)
        rec.decision_after, rec.utility_after, rec.violations_after = new.decision, new.utility_score, len(new.violations)
        rec.seconds = round(time.perf_counter() - t0, 3)
        write_json(rdir / "round.json", rec)
        rows.append(_row(new, man, task, run, utility.judge_backend_name, reflector.name, k, rec))
        ver, src = new, rdir
    rel = pair_dir / "released.json"
    if ver.decision == "accept":
        rows[-1]["released"] = release_creative(pair_dir, src, ver, man, cert_dir=cert_dir, thresholds=thresholds)
        if not rows[-1]["released"]:
            rows[-1]["error"] = "release: the released copy failed its disclosure check (see released_check.json)"
    elif rel.is_file():
        rel.unlink()
    return rows


def release_creative(pair_dir: Path, src: Path, ver: Verification, man: PairManifest, *,
                     cert_dir: Path | None = None, thresholds: dict[str, float] | None = None) -> bool:
    """Release the accepted creative of ``src`` (the pair dir or a round dir): ``<pair_dir>/released.mp4`` is a
    copy with the AIGC metadata and a signed C2PA manifest (:func:`nextads_lib.compliance.disclosure.release`),
    checked by :func:`verifier.check_release` (visible label, C2PA read back, AIGC); ``released.json`` is
    written only when that check passes, else ``released_check.json`` says why and nothing is released."""
    from .compliance import disclosure  # noqa: PLC0415

    th = {**V.THRESHOLDS, **(thresholds or {})}
    rel, out = pair_dir / "released.json", pair_dir / "released.mp4"
    rel_src = "creative.mp4" if src == pair_dir else f"verify/{src.name}/creative.mp4"
    backends = {"director": man.director_backend, "producer": man.producer_backend, "verifier": ver.verifier_backend,
                "system": man.system, "run": man.run_name}
    cert_dir = Path(cert_dir) if cert_dir is not None else pair_dir.parents[3] / "interim" / "c2pa"
    try:
        info = disclosure.release(src / "creative.mp4", out, produce_id=f"{man.run_name}/{man.pair_id}/round_{ver.round}",
                                  backends=backends, cert_dir=cert_dir)
        chk = V.check_release(out, read_model(src / "plan.json", Storyboard), n_frames=int(th["label_frames"]),
                              read_label=int(th.get("ocr_frames_per_slot", 0)) > 0, min_label_s=float(th["min_label_s"]))
    except Exception as e:  # noqa: BLE001 - recorded; nothing is released
        write_json(pair_dir / "released_check.json", {"error": f"{type(e).__name__}: {e}"})
        rel.unlink(missing_ok=True)
        return False
    write_json(pair_dir / "released_check.json", chk)
    if not chk.passed:
        rel.unlink(missing_ok=True)
        return False
    label_ok = not any(v.rule.startswith("label") for v in chk.violations)
    write_json(rel, ReleaseRecord(pair_id=man.pair_id, round=ver.round, video_path="released.mp4",
                                  plan_path=str(Path(rel_src).with_name("plan.json").as_posix()),
                                  label_verified=label_ok, decision=ver.decision, verifier_backend=ver.verifier_backend,
                                  source_video=rel_src, c2pa_verified=True, aigc_verified=True,
                                  c2pa_signer="NextAds Study signer (untrusted, study-local CA)", backends=backends,
                                  sign_seconds=round(info["aigc_seconds"] + info["c2pa_seconds"], 4)))
    return True


def list_runs(paths: StudyPaths, task: str, systems: str | list[str] = "nextads", protocol: str = "") -> list[str]:
    """The runs of ``task`` (directories with a ``summary.json``) whose system is in ``systems`` (a comma list;
    ``""`` or ``"all"`` = every system) and, when ``protocol`` is given, whose protocol label is that one (a run
    written before protocols counts as ``extended``), sorted by name."""
    from .schemas import RunSummary  # noqa: PLC0415

    want = [x.strip() for x in (systems.split(",") if isinstance(systems, str) else systems) if x.strip()]
    out = []
    base = paths.runs / task
    for d in sorted(base.glob("*/summary.json")) if base.is_dir() else []:
        try:
            s = read_model(d, RunSummary)
        except Exception:  # noqa: BLE001 - a broken summary is not a run to verify
            continue
        if (not want or "all" in want or s.system in want) and (not protocol or (s.protocol or "extended") == protocol):
            out.append(d.parent.name)
    return out


def list_pairs(paths: StudyPaths, task: str, run: str) -> list[tuple[Path, PairManifest]]:
    """The run's pairs that have a creative, in benchmark order (pair id order when the bench is missing)."""
    run_dir = paths.run_dir(task, run)
    mans = {}
    for p in sorted(run_dir.glob("*/manifest.json")):
        m = read_model(p, PairManifest)
        if m.status != "failed" and (p.parent / "creative.mp4").is_file():
            mans[m.pair_id] = (p.parent, m)
    order: list[str] = []
    if paths.bench_pairs(task).is_file():
        order = [b.pair_id for b in read_jsonl(paths.bench_pairs(task), BenchPair)]
    ordered = [mans[i] for i in order if i in mans] + [mans[i] for i in sorted(mans) if i not in set(order)]
    return ordered


def verify_and_reflect(paths: StudyPaths, task: str, run: str, *, verifier_backend: str = "offline",
                       reflector_backend: str = "offline", vq_backend: str = "offline", max_rounds: int = 2,
                       limit_pairs: int = 0, thresholds: dict[str, float] | None = None,
                       utility: V.UtilityAdapter | None = None, progress: bool = True,
                       max_cost_usd: float | None = None) -> Any:
    """Verify every pair of ``run`` (task ``pcg`` | ``pci``) and refine the non-accepted ones for up to
    ``max_rounds`` rounds; writes the round dirs, ``released.json`` and ``verify_<task>.parquet`` (the rows of
    every run verified so far, this run's replaced). Returns this run's rows as a DataFrame. ``max_cost_usd``
    > 0 with a paid verifier or Reflector backend: the run's plan (:func:`nextads_lib.planner.plan_verify`) is
    checked first, and a plan over it raises :class:`~nextads_lib.executor.BudgetExceeded` before any call,
    with nothing written."""
    import pandas as pd  # noqa: PLC0415

    from . import planner  # noqa: PLC0415

    if max_cost_usd is not None and max_cost_usd > 0 and (planner.is_paid(verifier_backend)
                                                           or planner.is_paid(reflector_backend)):
        planner.check_budget(planner.plan_verify(
            paths, [task], verifier_backend=verifier_backend, reflector_backend=reflector_backend,
            vq_backend=vq_backend, max_rounds=max_rounds, limit_pairs=limit_pairs, thresholds=thresholds,
            runs=[run]), max_cost_usd)

    cache = Cache(paths.cache)
    library = read_model(paths.library_json, ProductLibrary)
    users = ({u.user_id: u for u in read_jsonl(paths.bench_users(task), UserHistory)}
             if paths.bench_users(task).is_file() else {})
    utility = utility or V.UtilityAdapter(verifier_backend, vq_backend, paths.cache)
    reflector = get_backend(reflector_backend, cache_dir=paths.cache)
    pairs = list_pairs(paths, task, run)
    if limit_pairs and limit_pairs > 0:
        pairs = pairs[:limit_pairs]
    settings = {"verifier": verifier_backend, "vq": vq_backend, "reflector": reflector_backend,
                "max_rounds": int(max_rounds), "thresholds": {**V.THRESHOLDS, **(thresholds or {})},
                "run": run, "task": task}
    from . import executor  # noqa: PLC0415

    # one pair is one job of the current executor: locally inline, in order, with these objects; on Ray one
    # task per pair, each worker process building them once from the backends' names
    key = ("verify_and_reflect", str(paths.root), task, run, content_key(settings))
    ctx = {"cache": cache, "library": library, "users": users, "utility": utility, "reflector": reflector,
           "settings": settings}
    custom = utility if not (utility.judge_fn is V._default_judge() and utility.vq_fn is V._default_vq()) else None
    jobs = [{"key": key, "data_root": str(paths.root), "task": task, "run": run, "pair_dir": str(pair_dir),
             "manifest": man.model_dump(mode="json"), "verifier_backend": verifier_backend,
             "reflector_backend": reflector_backend, "vq_backend": vq_backend, "max_rounds": int(max_rounds),
             "thresholds": thresholds, "utility": custom,
             "settings": {"judge_backend": verifier_backend}} for pair_dir, man in pairs]
    bar = None
    if progress:
        from tqdm.auto import tqdm  # noqa: PLC0415

        bar = tqdm(total=len(jobs), desc=f"verify {task}/{run}", unit="pair", mininterval=2.0)
    with executor.shared(key, ctx):
        results = executor.map_ordered(_verify_job, jobs, workers=1 if executor.current().kind == "local" else 0,
                                       on_result=(lambda i, r: bar.update(1)) if bar is not None else None)
    if bar is not None:
        bar.close()
    rows: list[dict[str, Any]] = [r for res in results for r in res["rows"]]
    df = pd.DataFrame(rows, columns=COLUMNS)
    from .store import replace_rows  # noqa: PLC0415

    replace_rows(paths.results / f"verify_{task}.parquet", df, lambda old: old["run"] == run)
    return df


def planned_calls(paths: StudyPaths, task: str, run: str, *, verifier_backend: str = "offline",
                  reflector_backend: str = "offline", vq_backend: str = "offline", max_rounds: int = 2,
                  limit_pairs: int = 0, thresholds: dict[str, float] | None = None) -> tuple[list[Any], int, int]:
    """The model requests :func:`verify_and_reflect` with these arguments would send for ``run``
    (:class:`~nextads_lib.planner.PlannedCall`; the run planner's input, :func:`nextads_lib.planner.plan_verify`)
    and ``(calls, creatives, creatives to do)``. A pair whose verification is cached costs nothing. For the
    others, round 0: the verifier backend's judge requests (built and checked against the model cache) and,
    when enabled, one model compliance request per check; each revision round up to ``max_rounds`` (marked
    ``bound``: an accepted creative is not revised): the Reflector's request and the same verifier requests
    again. An offline backend's requests are counted without building them (they cost nothing)."""
    from .compliance.model_checks import PROMPTS  # noqa: PLC0415
    from .compliance.model_checks import plan_text as compliance_plan_text  # noqa: PLC0415
    from .judge import build_request as judge_request  # noqa: PLC0415
    from .planner import PlannedCall  # noqa: PLC0415
    from .ratelimit import estimate_tokens  # noqa: PLC0415

    cache = Cache(paths.cache)
    library = read_model(paths.library_json, ProductLibrary)
    products = {p.id: p for p in library.products}
    users = ({u.user_id: u for u in read_jsonl(paths.bench_users(task), UserHistory)}
             if paths.bench_users(task).is_file() else {})
    th = {**V.THRESHOLDS, **(thresholds or {})}
    settings = {"verifier": verifier_backend, "vq": vq_backend, "reflector": reflector_backend,
                "max_rounds": int(max_rounds), "thresholds": th, "run": run, "task": task}
    utility = V.UtilityAdapter(verifier_backend, vq_backend, paths.cache)
    judge_b = utility.backend
    check = not verifier_backend.startswith("offline")
    crits = list(V.UtilityAdapter.PERSONALIZATION) + ["product_alignment"] + (
        ["integration_quality"] if task == "pci" else [])
    model_checks = list(PROMPTS) if V.model_compliance_enabled(verifier_backend, th) else []
    pairs = list_pairs(paths, task, run)
    if limit_pairs and limit_pairs > 0:
        pairs = pairs[:limit_pairs]
    calls: list[PlannedCall] = []
    todo = 0
    for pair_dir, man in pairs:
        product, history = products.get(man.product_id), users.get(man.user_id)
        if product is None:
            continue  # recorded as an error row, no call
        hit = cache.get_json("verify_pair", _pair_key(settings, pair_dir, product, history))
        if hit is not None and (pair_dir / "verify" / "round_0" / "verification.json").is_file():
            continue
        todo += 1
        first: list[PlannedCall] = []
        for c in crits:
            if not check:
                first.append(PlannedCall(judge_b.name, f"judge.{c}"))
                continue
            try:
                req = judge_request(c, pair_dir, task=task, product=product, history=history,
                                    n_frames=utility.n_frames, seam_images=True)
            except Exception:  # noqa: BLE001 - the judgment is recorded missing, no call
                continue
            first.append(PlannedCall(judge_b.name, req.task, judge_b.cache is not None and judge_b.cache.has(
                "model", judge_b.cache_key(req)), max(0, estimate_tokens(req) - req.max_output_tokens)))
        sized = bool(model_checks) or not reflector_backend.startswith("offline")
        plan = read_model(pair_dir / "plan.json", Storyboard) if sized else None
        if plan is not None and model_checks:
            size = 258 * int(th["model_frames"]) + len(compliance_plan_text(plan, product)) // 4
            first += [PlannedCall(verifier_backend, f"verifier.compliance.{k}", False, size + len(PROMPTS[k]) // 4)
                      for k in model_checks]
        calls += first
        refl_in = (len(REFLECT_SYSTEM) + len(plan.model_dump_json()) + 1200) // 4 if plan is not None else 0
        for _ in range(int(max_rounds)):
            calls.append(PlannedCall(reflector_backend, "reflector.directives", False, refl_in, bound=True))
            calls += [PlannedCall(c.backend, c.task, False, c.input_tokens, bound=True) for c in first]
    return calls, len(pairs), todo


def _verify_job(job: dict[str, Any]) -> dict[str, Any]:
    """One pair of :func:`verify_and_reflect` (module level: a Ray task): the cached rows, or round 0 and the
    reflect-edit-verify rounds. The run's objects are the driver's (local) or built once per worker process."""
    from . import executor  # noqa: PLC0415

    paths = StudyPaths(Path(job["data_root"]))
    task, run = job["task"], job["run"]

    def build() -> dict[str, Any]:
        users = ({u.user_id: u for u in read_jsonl(paths.bench_users(task), UserHistory)}
                 if paths.bench_users(task).is_file() else {})
        utility = job["utility"] or V.UtilityAdapter(job["verifier_backend"], job["vq_backend"], paths.cache)
        return {"cache": Cache(paths.cache), "library": read_model(paths.library_json, ProductLibrary),
                "users": users, "utility": utility,
                "reflector": get_backend(job["reflector_backend"], cache_dir=paths.cache)}

    ctx = executor.shared_or(job["key"], build)
    cache, library, users = ctx["cache"], ctx["library"], ctx["users"]
    verifier_backend, reflector_backend = job["verifier_backend"], job["reflector_backend"]
    pair_dir, man = Path(job["pair_dir"]), PairManifest.model_validate(job["manifest"])
    settings = {"verifier": verifier_backend, "vq": job["vq_backend"], "reflector": reflector_backend,
                "max_rounds": job["max_rounds"], "thresholds": {**V.THRESHOLDS, **(job["thresholds"] or {})},
                "run": run, "task": task}
    product = next((p for p in library.products if p.id == man.product_id), None)
    history = users.get(man.user_id)
    if product is None:
        return {"rows": [_row(None, man, task, run, verifier_backend, reflector_backend, 0,
                              error=f"product '{man.product_id}' is not in the library")]}
    key = _pair_key(settings, pair_dir, product, history)
    hit = cache.get_json("verify_pair", key)
    if hit is not None and (pair_dir / "verify" / "round_0" / "verification.json").is_file():
        return {"rows": hit["rows"]}
    try:
        prow = verify_pair(pair_dir, man, task=task, run=run, product=product, history=history, library=library,
                           utility=ctx["utility"], reflector=ctx["reflector"], max_rounds=job["max_rounds"],
                           cache_dir=paths.cache, thresholds=job["thresholds"], vq_cache=cache,
                           cert_dir=paths.interim / "c2pa")
        cache.put_json("verify_pair", key, {"rows": prow})
    except Exception as e:  # noqa: BLE001 - recorded against the pair, the run goes on
        prow = [_row(None, man, task, run, verifier_backend, reflector_backend, 0, error=f"{type(e).__name__}: {e}")]
    return {"rows": prow}


def caught_examples(paths: StudyPaths, task: str, run: str, limit: int = 1) -> list[dict[str, Any]]:
    """The first ``limit`` pairs (pair id order) whose round-0 verification found a violation: the pair dir,
    the violation (check, rule, severity, message, evidence) and, when a round 1 exists, its directives and
    what changed. For the notebook's "caught violation" example."""
    out: list[dict[str, Any]] = []
    for d in sorted(paths.run_dir(task, run).glob("*/verify/round_0/verification.json")):
        ver = read_model(d, Verification)
        if not ver.violations:
            continue
        pair_dir = d.parent.parent.parent
        rec = None
        rp = pair_dir / "verify" / "round_1" / "round.json"
        if rp.is_file():
            rec = read_model(rp, RoundRecord)
        out.append({"pair_dir": pair_dir, "verification": ver, "violation": ver.violations[0], "round": rec})
        if len(out) >= limit:
            break
    return out


def learned_head_ablation(paths: StudyPaths, task: str, run: str) -> Any:
    """What the Verifier's ``learned_head`` switch (:mod:`nextads_lib.compliance.head`) would change on ``run``'s
    round-0 creatives, as verified: per pair, the head's findings per text check over the plan's texts and the
    lines OCR read (the cached reading of the verification itself), and the decision with them
    (:func:`verifier.decide` on the same utility score and thresholds). Nothing is written. One row per pair:
    ``pair_id``, ``decision`` (as verified), ``decision_with_head``, ``head_findings`` and one count per check."""
    import pandas as pd  # noqa: PLC0415

    from .compliance import head  # noqa: PLC0415

    cache = Cache(paths.cache)
    library = read_model(paths.library_json, ProductLibrary)
    rows = []
    for pair_dir, man in list_pairs(paths, task, run):
        vp = pair_dir / "verify" / "round_0" / "verification.json"
        if not vp.is_file():
            continue
        ver = read_model(vp, Verification)
        plan = read_model(pair_dir / "plan.json", Storyboard)
        per_slot = int(ver.thresholds.get("ocr_frames_per_slot", 0))
        units = (V.frame_units(plan, pair_dir / "creative.mp4", per_slot=per_slot, cache=cache)[0]
                 if per_slot > 0 and (pair_dir / "creative.mp4").is_file() else [])
        comp = V.add_learned_findings(ver.compliance, plan, units, library.get(man.product_id))
        extra = {c.check: c.checked.get("learned_head", {}).get("findings", 0) for c in comp
                 if c.check in head.HEAD_CHECKS}
        decision, _ = V.decide(comp, ver.utility_score, {**V.THRESHOLDS, **ver.thresholds})
        rows.append({"pair_id": man.pair_id, "decision": ver.decision, "decision_with_head": decision,
                     "head_findings": sum(extra.values()), **extra})
    return pd.DataFrame(rows, columns=["pair_id", "decision", "decision_with_head", "head_findings",
                                       *head.HEAD_CHECKS])


def planted_demo(paths: StudyPaths, task: str, run: str, *, reflector_backend: str = "offline",
                 utility: V.UtilityAdapter | None = None, max_rounds: int = 1) -> dict[str, Any] | None:
    """A held-out demonstration on a COPY of the run's first pair (under ``interim/verify_demo/``; the run is
    untouched): slot 0's on-screen text leaks a personal token of the user's history (an @handle when there is
    one), and slot 1's narration makes the product's first forbidden claim and names another brand of the
    library; the changed slots are re-rendered, then the pair goes through the Verifier -> Reflector loop.
    Returns ``{"dir", "planted", "rows"}``, or None when the run has no pair."""
    from .producer import edit  # noqa: PLC0415

    pairs = list_pairs(paths, task, run)
    if not pairs:
        return None
    library = read_model(paths.library_json, ProductLibrary)
    users = ({u.user_id: u for u in read_jsonl(paths.bench_users(task), UserHistory)}
             if paths.bench_users(task).is_file() else {})
    src, man = next(((d, m) for d, m in pairs if m.user_id in users), pairs[0])
    product = library.get(man.product_id)
    history = users.get(man.user_id)
    toks = sorted(V.personal_data(history)) if history is not None else []
    token = next((t for t in toks if t.startswith("@")), None) or next((t for t in toks if t[:1].isupper()), None) \
        or man.user_id
    claim = product.forbidden_claims[0] if product.forbidden_claims else "guaranteed results"
    brand = V.other_brands(product, library)[0]
    dst = paths.interim / "verify_demo" / task / run / man.pair_id
    if dst.exists():
        shutil.rmtree(dst)
    shutil.copytree(src, dst, ignore=shutil.ignore_patterns("verify", "released.json"))
    plan = read_model(dst / "plan.json", Storyboard)
    order = sorted(plan.slots, key=lambda x: x.start_s)
    s0, s1 = order[0], order[1] if len(order) > 1 else order[0]
    planted = {"on_screen_text": f"Hi {token}", "narration": f"{product.name} {claim}, unlike {brand}."}
    slots = [x.model_copy(update={"on_screen_text": planted["on_screen_text"]}) if x.index == s0.index else
             x.model_copy(update={"narration": planted["narration"]}) if x.index == s1.index else x for x in plan.slots]
    write_json(dst / "plan.json", plan.model_copy(update={"slots": slots}))
    req, pman = edit.producer_request(dst)
    edit.edit_slots(src / "creative.mp4", req, sorted({s0.index, s1.index}), dst / "creative.mp4",
                    edit.producer_for(pman, paths.cache))
    utility = utility or V.UtilityAdapter("offline", "offline", paths.cache)
    rows = verify_pair(dst, man, task=task, run=run, product=product, history=history, library=library,
                       utility=utility, reflector=get_backend(reflector_backend, cache_dir=paths.cache),
                       max_rounds=max_rounds, cache_dir=paths.cache)
    return {"dir": dst, "planted": {"slot_0": planted["on_screen_text"], "slot_1": planted["narration"]}, "rows": rows}


def round_states(df: Any, max_rounds: int | None = None) -> Any:
    """Each pair's state after round r (r = 0..max): its last row with round <= r (a pair accepted at round
    0 stays accepted), with ``n_directives`` of round r itself (0 when it had none)."""
    import pandas as pd  # noqa: PLC0415

    if df is None or not len(df):
        return df
    top = int(df["round"].max()) if max_rounds is None else int(max_rounds)
    out = []
    for _, g in df.sort_values("round").groupby(["task", "run", "pair_id"], sort=True):
        for r in range(top + 1):
            cur = g[g["round"] <= r].iloc[-1].copy()
            cur["n_directives"] = int(g.loc[g["round"] == r, "n_directives"].sum())
            cur["round"] = r
            out.append(cur)
    return pd.DataFrame(out).reset_index(drop=True)


def summary_table(df: Any, max_rounds: int | None = None) -> Any:
    """Per task x run x round (states after the round, :func:`round_states`): pairs, accept / revise / reject,
    accept rate, mean utility (0..1, proxy where the evaluators are), mean violations, directives issued in
    the round; rounded and deterministic (the notebook's checked table)."""
    import pandas as pd  # noqa: PLC0415

    cols = ["task", "run", "round", "pairs", "accept", "revise", "reject", "accept_rate", "utility", "violations",
            "directives"]
    if df is None or not len(df):
        return pd.DataFrame(columns=cols)
    st = round_states(df, max_rounds)
    g = st.groupby(["task", "run", "round"], sort=True)
    out = g.agg(pairs=("pair_id", "nunique"), accept=("decision", lambda s: int((s == "accept").sum())),
                revise=("decision", lambda s: int((s == "revise").sum())),
                reject=("decision", lambda s: int((s == "reject").sum())),
                utility=("utility_score", lambda s: s.astype(float).mean()),
                violations=("n_violations", lambda s: s.astype(float).mean()),
                directives=("n_directives", "sum")).reset_index()
    out["accept_rate"] = (out["accept"] / out["pairs"]).round(2)
    out["utility"] = out["utility"].astype(float).round(3)
    out["violations"] = out["violations"].astype(float).round(2)
    out["directives"] = out["directives"].astype(int)
    return out[cols]



# ------------------------------------------------------------- profile updates (continual user modeling, issue 17)
def profile_directives(long_term: dict[str, Any], short_term: list[dict[str, Any]], impression: int) -> list[Any]:
    """The Reflector's profile-update directives from the current visit's impressions (its short-term state):

    - two consecutive skips of creatives in the profile's tone, while an impression of this visit in another
      (perceived) tone was watched to at least half: that tone becomes the profile's ``tone``;
    - a conversion: the converting impression's choices (tone, hook, length, CTA) become the profile's.

    Returns :class:`nextads_lib.closed_loop.ProfileUpdate` items (``source = "reflector"``); the caller applies
    them to the long-term profile."""
    from .closed_loop import ProfileUpdate  # noqa: PLC0415

    out: list[Any] = []
    if not short_term:
        return out
    last = short_term[-1]
    if last["feedback"]["converted"]:
        for field in ("tone", "hook", "length", "cta"):
            v = last["arm"][field]
            if long_term.get(field) != v:
                out.append(ProfileUpdate(field=field, value=v, source="reflector", impression=impression,
                                         reason=f"converted on impression {impression + 1}"))
        return out
    tone = long_term.get("tone")
    if (len(short_term) >= 2 and all(x["feedback"]["skipped"] and x["perceived"]["tone"] == tone for x in short_term[-2:])):
        watched = [x for x in short_term if x["perceived"]["tone"] != tone and x["feedback"]["watch_fraction"] >= 0.5]
        if watched:
            best = max(watched, key=lambda x: x["reward"])
            out.append(ProfileUpdate(field="tone", value=best["perceived"]["tone"], source="reflector",
                                     impression=impression, reason=f"two skips in '{tone}'; '{best['perceived']['tone']}' "
                                     f"was watched ({best['feedback']['watch_fraction']:.2f})"))
    return out


__all__ = ["COLUMNS", "ROUTES", "ReflectorAnswer", "apply_directives", "caught_examples", "planned_calls", "build_request", "constraint_errors",
           "learned_head_ablation", "list_pairs", "list_runs", "patch_plan", "planted_demo", "profile_directives", "reflect", "round_states", "rule_directives", "summary_table", "verify_and_reflect",
           "verify_pair"]
