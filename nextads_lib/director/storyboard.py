"""Director stage 3, storyboard generation (paper 3.2.1, 5.1.1; PCI 5.2.1): an executable scene-level plan in
slots of 2 to 3 s (hook, body, call to action) with camera, composition, narration, on-screen text, pacing
and the asset ids each slot shows; validated (:mod:`.validation`) and sent back once for revision.

Also the narration budget (:func:`fit_line`, :func:`speakable`: what a slot can speak) and the offline
handlers ``director.storyboard`` / ``director.storyboard_revise`` (templates, :func:`compose_storyboard`).
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from pydantic import BaseModel, Field, ValidationError

from ..backends import ImagePart, ModelRequest, TextPart, register_offline
from ..config import AI_LABEL, DEFAULT_SEED, display_path, resolve
from ..schemas import (
    MatchResult,
    Product,
    Schema,
    Slot,
    Storyboard,
    UserHistory,
    UserProfile,
)
from ..seed import rng
from .common import (
    HostContext,
    MAX_SLOT_S,
    MIN_SLOT_S,
    StoryboardError,
    _EPS,
    _existing_images,
    narration_budget,
    product_brief,
)
from .validation import validate_storyboard


class StoryboardAnswer(Schema):
    """What the backend answers for ``director.storyboard`` / ``director.storyboard_revise``."""

    hook: str
    matched_topic: str | None = None
    slots: list[Slot] = Field(min_length=1)
    cta: str
    host_connection: str | None = None


STORYBOARD_SYSTEM = (
    "You are the Director of a video-advertising system. Write an executable scene-level storyboard for a "
    "short vertical video ad: a hook, then contiguous slots of 2 to 3 seconds each starting at 0 and ending "
    "exactly at the requested duration; slot 0 has role 'hook', the last slot role 'cta', the others 'body'. "
    "Each slot gives start_s, end_s, camera (one of static, pan_left, pan_right, zoom_in, zoom_out, push_in, "
    "tilt_up, tilt_down), the visual composition, narration (spoken at a natural 2.5 words per second: at "
    "most 7 words in a 3-second slot, 5 in a 2-second one), on-screen text (at most 6 "
    "words), pacing (slow/medium/fast) and the asset ids shown (from the list given). Name the product. Use "
    "only the product's own selling points and facts; never a forbidden claim; never any personal data of "
    "the user (names, ids, handles, places). Answer with JSON only."
)
REVISE_SYSTEM = STORYBOARD_SYSTEM + (
    " Your previous storyboard (in context.previous) failed validation with the errors in context.errors; "
    "return a corrected storyboard."
)


def slot_times(duration_s: float) -> list[tuple[float, float]]:
    """Equal contiguous slots of 2 to 3 s covering ``duration_s`` (the fewest slots that fit)."""
    if duration_s < MIN_SLOT_S - _EPS:
        raise ValueError(f"duration_s={duration_s}: a storyboard needs at least {MIN_SLOT_S} s")
    n = max(1, math.ceil(duration_s / MAX_SLOT_S - _EPS))
    if duration_s / n < MIN_SLOT_S - _EPS:
        raise ValueError(f"duration_s={duration_s} cannot be cut into slots of {MIN_SLOT_S}-{MAX_SLOT_S} s")
    step = duration_s / n
    edges = [round(i * step, 3) for i in range(n)] + [round(float(duration_s), 3)]
    return list(zip(edges[:-1], edges[1:]))


def asset_catalog(product: Product, *, personalized: bool, history: UserHistory | None = None,
                  host: HostContext | None = None, start_frame: str | Path | None = None) -> list[dict[str, str]]:
    """The asset ids a storyboard may reference, with their kind; :func:`ground_assets` produces exactly these
    (``product_<i>``, ``logo``, ``user_<i>`` and ``palette`` when personalized, ``start_frame`` for PCI)."""
    cat = [{"id": f"product_{i}", "kind": "product_image", "caption": a.caption}
           for i, a in enumerate(product.images[:3])]
    cat.append({"id": "logo", "kind": "logo", "caption": product.logo.caption})
    if personalized and history is not None:
        for i in range(n_user_visuals(history)):
            cat.append({"id": f"user_{i}", "kind": "user_visual", "caption": "user-preferred visual element"})
        cat.append({"id": "palette", "kind": "palette", "caption": "user-preferred palette swatches"})
    if host is not None or start_frame is not None:
        cat.append({"id": "start_frame", "kind": "start_frame", "caption": "host integration frame"})
    return cat


def n_user_visuals(history: UserHistory, max_n: int = 3) -> int:
    """How many user-visual crops grounding makes: one per history image that exists, at most ``max_n``."""
    return min(max_n, len({iid for iid, _ in _existing_images(history)}))


def build_storyboard_request(
    product: Product, *, profile: UserProfile | None = None, match: MatchResult | None = None,
    duration_s: float = 12.0, aspect_ratio: str = "9:16", host: HostContext | None = None,
    assets: Sequence[dict[str, str]] = (), seed: int = DEFAULT_SEED,
) -> ModelRequest:
    """The ``director.storyboard`` request. Personalized when ``profile`` is given and ``match`` is not a
    fallback; otherwise (GenericAds, or a fallback) it carries only the product and the serving context:
    no user id, no topic, no style, no history."""
    personalized = profile is not None and not (match is not None and match.fallback)
    ctx: dict[str, Any] = {
        "product": product_brief(product),
        "serving": {"duration_s": float(duration_s), "aspect_ratio": aspect_ratio,
                    "slots": [list(t) for t in slot_times(duration_s)], "disclosure": AI_LABEL},
        "assets": [dict(a) for a in assets],
        "personalized": personalized,
        "seed": int(seed),
    }
    if personalized:
        assert profile is not None
        ctx["user"] = {
            "presentation": profile.presentation.model_dump(mode="json"),
            "visual": {k: v for k, v in profile.visual.model_dump(mode="json").items() if k != "evidence"},
            "topics": [t.topic for t in profile.topics],
        }
        if match is not None:
            ctx["match"] = {"best_topic": match.best_topic, "best_score": match.best_score,
                            "selling_points": list(match.selling_points)}
    if host is not None:
        ctx["host"] = {"topic": host.topic, "summary": host.summary, "timestamp_s": host.timestamp_s}
    text = [f"Product: {product.name} by {product.brand}. {product.description}",
            f"Selling points: {'; '.join((match.selling_points if personalized and match else product.selling_points))}",
            f"Facts: {'; '.join(f'{k}: {v}' for k, v in product.facts.items())}",
            f"Forbidden claims: {'; '.join(product.forbidden_claims) or 'none'}",
            f"Serving context: {duration_s:g} s, aspect {aspect_ratio}, slots {ctx['serving']['slots']}",
            f"Asset ids: {', '.join(a['id'] for a in assets)}"]
    if personalized:
        text.append(f"User style: {ctx['user']}")
        if "match" in ctx:
            text.append(f"Matched topic/scenario: {ctx['match']['best_topic']}")
    if host is not None:
        text.append(f"Host video at {host.timestamp_s:.2f} s ({host.topic}): {host.summary}. The creative starts "
                    "from the integration frame (asset start_frame, first slot) and returns to it in the last slot; "
                    "state in host_connection how it connects to the host's topic.")
    parts: list[Any] = [TextPart("\n".join(text))]
    if host is not None:
        parts.append(ImagePart(str(resolve(host.frame_path))))
    return ModelRequest(task="director.storyboard", system=STORYBOARD_SYSTEM, parts=parts, schema=StoryboardAnswer,
                        context=ctx, item=f"product {product.id}" + (f" x user {profile.user_id}" if personalized and profile else ""))


def build_revise_request(req: ModelRequest, previous: Any, errors: Sequence[str]) -> ModelRequest:
    """The ``director.storyboard_revise`` request: the first request's context plus the previous answer and
    the validation errors."""
    prev = previous.model_dump(mode="json") if isinstance(previous, BaseModel) else previous
    ctx = {**req.context, "previous": prev, "errors": list(errors)}
    parts = list(req.parts) + [TextPart("Your previous storyboard failed validation:\n- " + "\n- ".join(errors))]
    return ModelRequest(task="director.storyboard_revise", system=REVISE_SYSTEM, parts=parts,
                        schema=StoryboardAnswer, context=ctx, item=req.item)


def _assemble(ans: StoryboardAnswer, product: Product, backend_name: str, *, personalized: bool,
              user_id: str | None, duration_s: float, aspect_ratio: str, host: HostContext | None) -> Storyboard:
    """The storyboard of an answer. PCI's start/return flags are what the answer planned (its first slot, and
    its last, show the ``start_frame`` asset), so validation can refuse a plan that does not return; under
    ``frame_overwrite`` (``host.flags_from_plan`` off) they are set by code, as the extended protocol pins them."""
    by_code = host is not None and not host.flags_from_plan
    opens = by_code or (bool(ans.slots) and "start_frame" in ans.slots[0].assets)
    closes = by_code or (bool(ans.slots) and "start_frame" in ans.slots[-1].assets)
    return Storyboard(
        product_id=product.id, user_id=user_id, backend=backend_name, personalized=personalized, hook=ans.hook,
        matched_topic=ans.matched_topic if personalized else None, aspect_ratio=aspect_ratio,
        duration_s=float(duration_s), slots=ans.slots, cta=ans.cta, disclosure=AI_LABEL,
        host_connection=ans.host_connection if host is not None else None,
        starts_from_frame=display_path(resolve(host.frame_path)) if host is not None and opens else None,
        returns_to_frame=host is not None and closes,
    )


def plan_storyboard(
    product: Product, backend: Any, *, profile: UserProfile | None = None, match: MatchResult | None = None,
    duration_s: float = 12.0, aspect_ratio: str = "9:16", host: HostContext | None = None,
    history: UserHistory | None = None, seed: int = DEFAULT_SEED, assets: Sequence[dict[str, str]] | None = None,
) -> Storyboard:
    """Stage 3: the storyboard, validated by :func:`validate_storyboard`; an invalid answer is sent back once
    (task ``director.storyboard_revise``, with the errors), and a second invalid answer raises
    :class:`StoryboardError`.

    ``profile`` None (GenericAds) or ``match.fallback`` -> a generic plan whose request holds no user data.
    ``history`` is used only locally, to check that no personal data leaked into the text. ``host`` (PCI):
    the plan starts from the integration frame and returns to it. ``assets``: the catalog of asset ids
    (default :func:`asset_catalog`).
    """
    personalized = profile is not None and not (match is not None and match.fallback)
    if assets is None:
        assets = asset_catalog(product, personalized=personalized, history=history, host=host)
    req = build_storyboard_request(product, profile=profile, match=match, duration_s=duration_s,
                                   aspect_ratio=aspect_ratio, host=host, assets=assets, seed=seed)
    user_id = profile.user_id if personalized and profile else None
    asset_ids = {a["id"] for a in assets}

    def attempt(r: ModelRequest) -> tuple[Any, Storyboard | None, list[str]]:
        ans = backend.complete(r).value
        try:
            sb = _assemble(ans, product, backend.name, personalized=personalized, user_id=user_id,
                           duration_s=duration_s, aspect_ratio=aspect_ratio, host=host)
        except ValidationError as e:
            return ans, None, [f"schema: {x['loc']}: {x['msg']}" for x in e.errors()[:5]]
        errs = validate_storyboard(sb, product, history=history, duration_s=duration_s, host=host,
                                   asset_ids=asset_ids)
        return ans, sb, errs

    ans, sb, errors = attempt(req)
    if not errors and sb is not None:
        return sb
    ans2, sb2, errors2 = attempt(build_revise_request(req, ans, errors))
    if not errors2 and sb2 is not None:
        return sb2
    raise StoryboardError(req.item, errors2)


# ------------------------------------------------------------------------------- offline storyboard handler
#: per topic: (scenario phrase for narration, setting for the visual composition)
SCENARIOS: dict[str, tuple[str, str]] = {
    "fitness": ("your next workout", "a bright home-gym corner with a mat and dumbbells"),
    "running": ("your morning run", "a city running path at sunrise"),
    "skincare": ("your daily routine", "a clean bathroom shelf with soft light"),
    "fashion": ("your next outfit", "a styled outfit flat-lay on a clean floor"),
    "food": ("dinner at home", "a kitchen table with a steaming homemade dish"),
    "travel": ("your next trip", "a window seat view over a new city"),
    "tech": ("your desk setup", "a tidy desk setup with gadgets"),
    "gaming": ("game night", "a gaming corner lit by a screen glow"),
    "music": ("your playlist", "headphones on a desk beside a vinyl record"),
    "movies": ("movie night", "a sofa facing a big screen with popcorn"),
    "pets": ("life with your pet", "a sunny living room with a curious pet"),
    "home": ("your cozy evening in", "a cozy apartment corner with a warm lamp"),
    "outdoors": ("your weekend hike", "a mountain trail with a backpack in frame"),
    "productivity": ("your focus session", "a study desk with notes and a lamp"),
    "coffee": ("your coffee ritual", "a café table with a fresh latte"),
    "commute": ("your daily commute", "a city street at dusk with passing lights"),
}
#: per tone: hook, body narration and CTA templates ({name}, {brand}, {scene}, {point}, {slogan})
TONE_TEMPLATES: dict[str, dict[str, tuple[str, ...]]] = {
    "humorous": {"hook": ("Plot twist for {scene}.", "Okay, {scene} got funnier."),
                 "body": (". Yes, really.", ". You're welcome."),
                 "cta": ("Get {name}. Seriously, go.", "Try {name}. Thank us later.")},
    "informative": {"hook": ("What {scene} needs.", "Know this for {scene}."),
                    "body": (".", "."),
                    "cta": ("Get {name} today.", "Learn more about {name}.")},
    "emotional": {"hook": ("{scene} deserves more.", "For {scene}, details matter."),
                  "body": (", made for you.", ", when it counts."),
                  "cta": ("Make it yours with {name}.", "Bring {name} home.")},
    "energetic": {"hook": ("Level up {scene}!", "{scene}? Let's go!"),
                  "body": ("!", ", full power!"),
                  "cta": ("Grab {name} now!", "Get {name}, go!")},
    "calm": {"hook": ("Slow down, enjoy {scene}.", "{scene}, at your pace."),
             "body": (", simply.", "."),
             "cta": ("Discover {name}.", "Take your time with {name}.")},
    "luxurious": {"hook": ("Elevate {scene}.", "{scene}, refined."),
                  "body": (", crafted with care.", ", refined."),
                  "cta": ("Indulge in {name}.", "Experience {name}.")},
}
#: the generic (GenericAds / fallback) plan's hooks: product and slogan only
GENERIC_HOOKS = ("Meet {name}.", "Introducing {name}.", "{slogan}")
NARRATIVE_PREFIX: dict[str, tuple[str, ...]] = {
    "tutorial": ("First, ", "Then, "), "listicle": ("First up: ", "Next up: "), "review": ("Pro: ", "Verdict: "),
    "story": ("", "Then "), "montage": ("", ""), "vlog": ("Today: ", "Also: "),
}
_CAMERA_BY_MOTION = {
    "dynamic": ("push_in", "pan_left", "pan_right", "zoom_in", "tilt_up"),
    "slow": ("zoom_in", "pan_left", "pan_right", "zoom_out", "tilt_down"),
    "static": ("static", "zoom_in", "static", "zoom_out"),
}
_PACING_BY_MOTION = {"dynamic": "fast", "slow": "slow", "static": "medium"}


def _short(text: str, n_words: int) -> str:
    ws = text.split()
    return " ".join(ws[:n_words]).rstrip(",;:") if len(ws) > n_words else text


_TRAILING = {"a", "an", "and", "at", "for", "in", "of", "on", "or", "per", "the", "to", "up", "with"}


def fit_line(text: str, n_words: int) -> str:
    """``text`` in ``n_words`` words at most, ending as a sentence: a parenthesis goes first, then trailing
    sentences, then trailing clauses (after a comma), then trailing words (never ending on a connective)."""
    if len(text.split()) <= n_words:
        return text
    t = re.sub(r"\s*\([^)]*\)", "", text).strip()
    sentences = re.split(r"(?<=[.!?])\s+", t)
    while len(sentences) > 1 and len(" ".join(sentences).split()) > n_words:
        sentences.pop()
    t = " ".join(sentences)
    if len(t.split()) <= n_words:
        return t
    end = t[-1:] if t[-1:] in "!?" else "."
    clauses = [c.strip() for c in re.split(r",\s+", t.rstrip(".!?"))]  # "10,000" is a number, not two clauses
    while (len(clauses) > 1 and len(", ".join(clauses).split()) > n_words
           and len(", ".join(clauses[:-1]).split()) >= 3):
        clauses.pop()
    words = ", ".join(clauses).split()[:n_words]
    while len(words) > 1 and words[-1].lower().strip(",;:") in _TRAILING:
        words.pop()
    return " ".join(words).rstrip(".,;:!?-") + end


def speakable(text: str, duration_s: float) -> str:
    """``text`` cut to what a slot of ``duration_s`` seconds can speak (:func:`fit_line` at the budget)."""
    return fit_line(text, narration_budget(duration_s))


def _cap(s: str) -> str:
    return s[:1].upper() + s[1:] if s else s


def compose_storyboard(ctx: dict[str, Any]) -> StoryboardAnswer:
    """The offline Director's storyboard from a ``director.storyboard`` context: templates chosen by the
    user's tone and narrative (informative/montage for a generic plan), the matched topic's scenario and
    setting, the prioritised selling points (one per body slot), a price fact on screen when the product has
    one, cameras from the user's motion, the palette/lighting in the composition; deterministic under the
    context's seed. With a host, slot 0 opens on the integration frame and the last slot returns to it."""
    prod = ctx["product"]
    name, brand = prod["name"], prod["brand"]
    times = [tuple(t) for t in ctx["serving"]["slots"]]
    personalized = bool(ctx.get("personalized"))
    user = ctx.get("user") or {}
    match = ctx.get("match") or {}
    host = ctx.get("host")
    pres = user.get("presentation", {})
    vis = user.get("visual", {})
    tone = pres.get("tone", "informative") if personalized else "informative"
    narrative = pres.get("narrative", "montage") if personalized else "montage"
    motion = vis.get("motion", "slow") if personalized else "slow"
    topic = match.get("best_topic") if personalized else None
    if personalized and not topic and user.get("topics"):
        topic = user["topics"][0]
    scene, setting = SCENARIOS.get(topic or "", (f"every day with {brand}", "a clean studio set in brand colours"))
    if not personalized:
        scene, setting = "every day", f"a clean studio set in {brand}'s brand colours"
    points = list(match.get("selling_points") or prod["selling_points"]) if personalized else list(prod["selling_points"])
    tpl = TONE_TEMPLATES.get(tone, TONE_TEMPLATES["informative"])
    prefixes = NARRATIVE_PREFIX.get(narrative, ("", ""))
    r = rng(int(ctx.get("seed", DEFAULT_SEED)), "storyboard", prod["id"], topic or "-", tone, narrative)
    pick = lambda seq: seq[int(r.integers(len(seq)))]  # noqa: E731
    cams = _CAMERA_BY_MOTION.get(motion, _CAMERA_BY_MOTION["slow"])
    pacing = _PACING_BY_MOTION.get(motion, "medium")
    if tone == "energetic":
        pacing = "fast"
    asset_ids = [a["id"] for a in ctx.get("assets", [])]
    prod_ids = [a for a in asset_ids if a.startswith("product_")] or []
    user_ids = [a for a in asset_ids if a.startswith("user_")]
    look = (f"{vis.get('palette_name')} palette, {vis.get('lighting')} lighting" if personalized and vis.get("palette_name")
            else f"{brand} brand colours, soft studio lighting")
    price = next((v for k, v in prod["facts"].items() if k.lower().startswith("price")), None)

    if personalized:
        hook = _cap(pick(tpl["hook"]).format(scene=scene, name=name, brand=brand))
    else:
        hook = pick(GENERIC_HOOKS).format(name=name, slogan=prod["slogan"])
    slots: list[Slot] = []
    n = len(times)
    body_i = 0
    for i, (a, b) in enumerate(times):
        last, first = i == n - 1, i == 0
        budget = narration_budget(b - a)
        cam = cams[int(r.integers(len(cams)))]
        if last and n > 1:
            narration = fit_line(pick(tpl["cta"]).format(name=name), budget)
            ost = f"{name} · {price}" if price else f"{name}: {prod['slogan']}"
            comp = (f"{name} hero with the {brand} logo and the call to action, {look}")
            assets = ["logo"] + prod_ids[:1]
            role = "cta"
        elif first:
            meet = f"{hook} Meet {name}."
            narration = meet if len(meet.split()) <= budget and name not in hook else fit_line(hook, budget)
            ost = _short(hook, 6)
            comp = f"{setting}; {name} enters the frame, {look}"
            assets = (user_ids[:1] if personalized else []) + prod_ids[:1]
            role = "hook" if n > 1 else "cta"
            if n == 1:
                narration = fit_line(f"{_short(hook, 4)} Get {name}.", budget)
        else:
            point = points[body_i % len(points)]
            pre = prefixes[0 if body_i == 0 else 1]
            core = pre + (point[:1].lower() + point[1:] if pre else point)
            suffix = pick(tpl["body"])
            narration = _cap(core + suffix if len((core + suffix).split()) <= budget
                             else fit_line(core.rstrip(".") + ".", budget))
            ost = _short(point, 6)
            comp = f"close-up of {name} showing: {point.lower()}; {setting}, {look}"
            if personalized and user_ids:
                comp += ", with the user's preferred visual elements"
            assets = [prod_ids[body_i % len(prod_ids)]] if prod_ids else []
            if personalized and user_ids:
                assets.append(user_ids[(body_i + 1) % len(user_ids)])
            role = "body"
            body_i += 1
        if host is not None and first:
            comp = f"opens on the host's integration frame ({host['topic']}), then {comp}"
            assets = ["start_frame"] + assets
        if host is not None and last:
            comp = f"{comp}; ends back on the host's integration frame"
            assets = assets + ["start_frame"]
        slots.append(Slot(index=i, start_s=a, end_s=b, role=role, camera=cam, composition=comp, narration=narration,
                          on_screen_text=ost, pacing=pacing, assets=[x for x in dict.fromkeys(assets) if x in asset_ids]))
    cta = f"Get {name} today" if not price else f"Get {name} · {price}"
    host_conn = None
    if host is not None:
        host_conn = (f"The host is about {host['topic']}: the segment picks up from that moment, shows {name} "
                     f"fitting into it, and hands back to the same frame.")
    if not any(name.lower() in (s.narration + s.on_screen_text).lower() for s in slots):
        slots[-1] = slots[-1].model_copy(update={"on_screen_text": name})
    return StoryboardAnswer(hook=hook, matched_topic=topic, slots=slots, cta=cta, host_connection=host_conn)


@register_offline("director.storyboard")
def offline_storyboard(req: ModelRequest) -> StoryboardAnswer:
    """Offline storyboard: :func:`compose_storyboard` over the request context."""
    return compose_storyboard(req.context)


@register_offline("director.storyboard_revise")
def offline_storyboard_revise(req: ModelRequest) -> StoryboardAnswer:
    """Offline revision: the template plan is valid by construction, so it recomposes from the original
    context (the errors in ``context.errors`` are recorded by the caller)."""
    ctx = {k: v for k, v in req.context.items() if k not in ("previous", "errors")}
    return compose_storyboard(ctx)
