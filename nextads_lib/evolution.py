"""Creative evolution across impressions (paper section 3.3): a user simulator, the Reflector's impression-to-
impression policy, and the comparison with the static baseline.

**Creative features.** A shown creative is summarised by :class:`CreativeFeatures`: its topics (the matched
topic weight 1, the product's other topics 0.5), tone, narrative, palette (named), hook, the claims it makes
(selling points and facts in its text), its depth (0 light hook, 1 selling points, 2 facts and price) and CTA
strength (0..1). :func:`features_of` reads them off a plan (``plan.json``), the user profile and the
Producer's palette.

**Offline simulator** (:class:`GroundTruthSimulator`), driven by the embedded sample's hidden ground truth
``g`` (:class:`~nextads_lib.schemas.GroundTruth`) and the session memory ``M`` (claims shown before, hooks
shown before), for impression ``k`` (0-based) of a creative ``c`` of duration ``T``::

    r  = max_t c.topics[t] * g.topics[t] / max_t g.topics[t]             topical relevance, 0..1
    s  = ([c.tone = g.tone] + [c.palette = g.palette] + [c.narrative = g.narrative]) / 3     style match
    nu = |claims(c) \\ M| / max(1, |claims(c)|)                           novelty of the claims (1 if none)
    h  = number of earlier impressions with the same hook
    f  = 1 - exp(-(0.45 h + 0.8 (1 - nu) [k > 0]))                        fatigue
    I  = interest: I_0 = 0.2 + 0.5 r;  I_{k+1} = clip(I_k + 0.25 w_k r - 0.1 skip_k, 0, 1)
    m  = 1 - |depth/2 - I_k|                                              progressive-disclosure fit
    z  = -0.6 + 2.2 r + 0.9 s + 0.8 m - 2.0 f + e,   e ~ N(0, 0.35)
    p  = sigmoid(z)
    skip     = u1 > p
    w        = 0.1 + 0.2 p  if skip  else  clip(0.55 + 0.45 p + 0.1 e', 0, 1)     watch fraction
    dwell_s  = w T
    replay   = not skip and u2 < 0.35 p^2 (1 - f)
    p_conv   = sigmoid(-4.2 + 2.0 I_k + 1.2 cta + 0.8 depth/2 + 1.0 r - 1.5 f)
    convert  = not skip and not converted before and u3 < p_conv

with ``u1, u2, u3 ~ U(0, 1)``, ``e, e' ~ N`` drawn from ``seed.rng(seed, "evolution", user, product, k)``:
the SAME draws for every policy (common random numbers), so a policy difference is never noise luck.

**Model-backed simulator** (:class:`ModelSimulator`): one ``evolution.simulate`` request per impression
through a backend string, with the user's history (titles/texts: the persona, never the ground truth), the
creative's text and the previous impressions' feedback; the answer is an
:class:`~nextads_lib.schemas.ImpressionFeedback`.

**Policies.** ``static``: the creative of the run replayed K times (today's retrieval-style serving).
``reflector``: the Reflector turns each impression's feedback into the next creative: adaptive message
allocation (the next selling points not yet shown, in the Director's priority order; facts once points run
out), hook variation (a hook not shown before), progressive disclosure (depth and CTA strength rise after an
engaged impression: 0.3 / 0.6 / 0.9), tone exploration after a skip (the next tone not tried; the best
watched tone once all were tried), with a session memory of the claims and hooks already shown. Each
impression's creative is a patched plan (validated by :func:`nextads_lib.director.validate_storyboard`),
written to ``runs/evolution/<task>/<run>/<pair>/impression_<k>.json``; rendering is not needed by the
simulator (``render`` = False).
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np
from pydantic import Field

from .backends import ModelRequest, TextPart, get_backend
from .config import DEFAULT_SEED, StudyPaths
from .schemas import (
    GroundTruth,
    ImpressionFeedback,
    Product,
    ProductLibrary,
    Schema,
    Storyboard,
    UserHistory,
)
from .seed import rng
from .store import Cache, content_key, read_jsonl, read_model, write_json
from .topics import TONES

CODE_VERSION = "evolution-2"
POLICIES = ("static", "reflector")
CTA_BY_DEPTH = (0.3, 0.6, 0.9)


class CreativeFeatures(Schema):
    """What the simulator sees of a shown creative."""

    topics: dict[str, float]
    tone: str
    narrative: str
    palette: str
    hook: str
    claims: list[str] = Field(default_factory=list)
    depth: int = Field(ge=0, le=2)
    cta_strength: float = Field(ge=0, le=1)
    duration_s: float = Field(gt=0)


# ------------------------------------------------------------------------------------------------ features
def palette_name(hexes: list[str]) -> str:
    """The named palette (``topics.PALETTES``) nearest to a list of colours (equal shares)."""
    from .director import _rgb_arr, nearest_palette  # noqa: PLC0415

    good = [h for h in hexes if isinstance(h, str) and h.startswith("#") and len(h) == 7]
    if not good:
        return ""
    cols = _rgb_arr(good)
    return nearest_palette(cols, np.full(len(cols), 1.0 / len(cols)))[0]


def claims_in(plan: Storyboard, product: Product) -> list[str]:
    """The product's selling points and facts (``"key: value"``) the plan's text states."""
    blob = " ".join([plan.hook, plan.cta] + [f"{s.narration} {s.on_screen_text}" for s in plan.slots]).lower()
    out = [p for p in product.selling_points if p.lower() in blob or " ".join(p.lower().split()[:4]) in blob]
    out += [f"{k}: {v}" for k, v in product.facts.items() if v.lower() in blob]
    return out


def features_of(plan: Storyboard, product: Product, *, tone: str, narrative: str, palette: str,
                depth: int = 1, cta_strength: float = 0.6) -> CreativeFeatures:
    topics = {t: 0.5 for t in product.topics}
    if plan.matched_topic:
        topics[plan.matched_topic] = 1.0
    return CreativeFeatures(topics=topics or {"": 0.0}, tone=tone, narrative=narrative, palette=palette,
                            hook=plan.hook, claims=claims_in(plan, product), depth=depth, cta_strength=cta_strength,
                            duration_s=plan.duration_s)


# ----------------------------------------------------------------------------------------------- simulator
def _sigmoid(x: float) -> float:
    return 1.0 / (1.0 + math.exp(-x))


class Session:
    """A user's memory within a session (one user-product pair): claims and hooks shown, interest, conversion."""

    def __init__(self, interest: float):
        self.claims: set[str] = set()
        self.hooks: list[str] = []
        self.interest = float(interest)
        self.converted = False
        self.feedback: list[ImpressionFeedback] = []


class GroundTruthSimulator:
    """The offline user simulator (equations in the module docstring)."""

    name = "offline-gt"

    def __init__(self, truths: dict[str, GroundTruth], seed: int = DEFAULT_SEED):
        self.truths = truths
        self.seed = int(seed)

    def start(self, user_id: str, c: CreativeFeatures) -> Session:
        return Session(0.2 + 0.5 * self.relevance(self.truths[user_id], c))

    @staticmethod
    def relevance(g: GroundTruth, c: CreativeFeatures) -> float:
        top = max(g.topics.values()) if g.topics else 1.0
        return float(max((w * g.topics.get(t, 0.0) for t, w in c.topics.items()), default=0.0) / max(top, 1e-9))

    def terms(self, user_id: str, c: CreativeFeatures, k: int, sess: Session) -> dict[str, float]:
        g = self.truths[user_id]
        r = self.relevance(g, c)
        s = ((c.tone == g.tone) + (c.palette == g.palette) + (c.narrative == g.narrative)) / 3.0
        nu = len(set(c.claims) - sess.claims) / max(1, len(c.claims)) if c.claims else 1.0
        h = sum(x == c.hook for x in sess.hooks)
        f = 1.0 - math.exp(-(0.45 * h + 0.8 * (1.0 - nu) * (k > 0)))
        m = 1.0 - abs(c.depth / 2.0 - sess.interest)
        return {"relevance": r, "style": s, "novelty": nu, "hook_repeats": float(h), "fatigue": f, "fit": m,
                "interest": sess.interest}

    def probabilities(self, t: dict[str, float], c: CreativeFeatures, e: float) -> tuple[float, float]:
        """``(p_watch, p_conv)`` from the impression's :meth:`terms` and the watch noise ``e`` (0 for the
        expectation); a simulator with another response model overrides this (and :meth:`terms`)."""
        p = _sigmoid(-0.6 + 2.2 * t["relevance"] + 0.9 * t["style"] + 0.8 * t["fit"] - 2.0 * t["fatigue"] + e)
        pc = _sigmoid(-4.2 + 2.0 * t["interest"] + 1.2 * c.cta_strength + 0.8 * c.depth / 2.0 + 1.0 * t["relevance"]
                      - 1.5 * t["fatigue"])
        return p, pc

    def remember(self, sess: Session, c: CreativeFeatures) -> None:
        """What a simulator keeps of a shown creative beyond :meth:`update`'s claims and hooks (nothing here)."""

    def show(self, user_id: str, product_id: str, c: CreativeFeatures, k: int, sess: Session
             ) -> tuple[ImpressionFeedback, dict[str, float]]:
        t = self.terms(user_id, c, k, sess)
        g = rng(self.seed, "evolution", user_id, product_id, k)
        e, e2 = float(g.normal(0, 0.35)), float(g.normal(0, 1.0))
        u1, u2, u3 = (float(x) for x in g.random(3))
        p, pc = self.probabilities(t, c, e)
        skip = u1 > p
        w = 0.1 + 0.2 * p if skip else float(np.clip(0.55 + 0.45 * p + 0.1 * e2, 0, 1))
        replay = (not skip) and u2 < 0.35 * p * p * (1 - t["fatigue"])
        conv = (not skip) and (not sess.converted) and u3 < pc
        fb = ImpressionFeedback(dwell_s=round(w * c.duration_s, 4), watch_fraction=round(w, 4), skipped=bool(skip),
                                replayed=bool(replay), converted=bool(conv),
                                rationale=f"p_watch={p:.3f} p_conv={pc:.3f}")
        self.remember(sess, c)
        self.update(sess, c, fb, t["relevance"])
        return fb, {**t, "p_watch": p, "p_conv": pc}

    @staticmethod
    def update(sess: Session, c: CreativeFeatures, fb: ImpressionFeedback, relevance: float) -> None:
        sess.interest = float(np.clip(sess.interest + 0.25 * fb.watch_fraction * relevance - 0.1 * fb.skipped, 0, 1))
        sess.claims |= set(c.claims)
        sess.hooks.append(c.hook)
        sess.converted = sess.converted or fb.converted
        sess.feedback.append(fb)


SIMULATE_SYSTEM = (
    "You simulate one user of a short-video app. From the user's interaction history (their persona) and the "
    "feedback they gave to earlier impressions of ads for the same product, predict what they do with the ad "
    "shown now: seconds watched (dwell_s, at most the ad's duration), watch_fraction (0..1), whether they skip, "
    "replay, or convert (buy/click through; at most once per session). Be realistic: repeated claims and hooks "
    "tire people. Answer with JSON only."
)


class ModelSimulator:
    """A model-backed user simulator: one ``evolution.simulate`` request per impression (persona = history
    texts; never the ground truth)."""

    def __init__(self, backend: Any, histories: dict[str, UserHistory]):
        self.backend = backend
        self.histories = histories
        self.name = backend.name

    def start(self, user_id: str, c: CreativeFeatures) -> Session:
        return Session(0.0)

    def show(self, user_id: str, product_id: str, c: CreativeFeatures, k: int, sess: Session
             ) -> tuple[ImpressionFeedback, dict[str, float]]:
        h = self.histories.get(user_id)
        persona = [f"{it.title}. {it.text}"[:200] for it in (h.items[-20:] if h else [])]
        prev = [f.model_dump(mode="json", exclude={"rationale"}) for f in sess.feedback]
        ctx = {"persona": persona, "creative": c.model_dump(mode="json"), "impression": k, "previous": prev,
               "product_id": product_id, "user_id": user_id}
        text = ("Persona (history):\n- " + "\n- ".join(persona) + f"\n\nImpression {k + 1}. The ad ({c.duration_s:g} s): "
                f"hook '{c.hook}', tone {c.tone}, claims {c.claims}, CTA strength {c.cta_strength:.1f}.\n"
                f"Earlier feedback: {prev}")
        req = ModelRequest(task="evolution.simulate", system=SIMULATE_SYSTEM, parts=[TextPart(text)],
                           schema=ImpressionFeedback, context=ctx, item=f"user {user_id} x {product_id} impression {k}")
        fb: ImpressionFeedback = self.backend.complete(req).value
        w = float(np.clip(fb.watch_fraction, 0, 1))
        fb = fb.model_copy(update={"dwell_s": min(fb.dwell_s, c.duration_s), "watch_fraction": w,
                                   "converted": fb.converted and not sess.converted})
        GroundTruthSimulator.update(sess, c, fb, 1.0)
        return fb, {}


def get_simulator(spec: str, truths: dict[str, GroundTruth], histories: dict[str, UserHistory], *,
                  seed: int = DEFAULT_SEED, cache_dir: Path | None = None) -> Any:
    """``offline`` -> :class:`GroundTruthSimulator`; any other backend string -> :class:`ModelSimulator`."""
    if spec == "offline":
        return GroundTruthSimulator(truths, seed)
    return ModelSimulator(get_backend(spec, cache_dir=cache_dir), histories)


# ------------------------------------------------------------------------------------------------- policies
def _hooks(plan: Storyboard, product: Product, tone: str) -> list[str]:
    from .director import GENERIC_HOOKS, SCENARIOS, TONE_TEMPLATES  # noqa: PLC0415

    scene = SCENARIOS.get(plan.matched_topic or "", ("every day", ""))[0]
    out = [plan.hook]
    for t in TONE_TEMPLATES.get(tone, TONE_TEMPLATES["informative"])["hook"]:
        out.append(t.format(scene=scene, name=product.name, brand=product.brand))
    out += [t.format(name=product.name, slogan=product.slogan) for t in GENERIC_HOOKS]
    return [h[:1].upper() + h[1:] for h in dict.fromkeys(x for x in out if x.strip())]


def _short(text: str, n: int) -> str:
    ws = text.split()
    return " ".join(ws[:n]).rstrip(",;:") if len(ws) > n else text


class ReflectorPolicy:
    """The Reflector across impressions (see the module docstring); ``next(k)`` gives the k-th plan."""

    def __init__(self, plan: Storyboard, product: Product, points: list[str], tone: str, narrative: str, palette: str):
        self.base, self.product, self.points = plan, product, points or list(product.selling_points)
        self.tone0, self.narrative, self.palette = tone, narrative, palette
        self.tone = tone
        self.stage = 0
        self.tried: dict[str, list[float]] = {tone: []}
        self.shown_claims: list[str] = []
        self.shown_hooks: list[str] = []

    def observe(self, c: CreativeFeatures, fb: ImpressionFeedback) -> None:
        self.tried.setdefault(c.tone, []).append(fb.watch_fraction)
        self.shown_claims += [x for x in c.claims if x not in self.shown_claims]
        self.shown_hooks.append(c.hook)
        if not fb.skipped and fb.watch_fraction >= 0.5:
            self.stage = min(2, self.stage + 1)
        elif fb.skipped:
            untried = [t for t in TONES if t not in self.tried]
            self.tone = untried[0] if untried else max(
                self.tried, key=lambda t: (float(np.mean(self.tried[t])), t == self.tone0))

    def next(self, k: int) -> tuple[Storyboard, CreativeFeatures]:
        from .director import speakable, validate_storyboard  # noqa: PLC0415

        p, name = self.product, self.product.name
        facts = [f"{a}: {b}" for a, b in p.facts.items()]
        fresh = [x for x in self.points if x not in self.shown_claims]
        fresh_facts = [x for x in facts if x not in self.shown_claims]
        body = [s for s in self.base.slots if s.role == "body"]
        depth = self.stage
        if depth == 0:
            lines = fresh[:max(1, len(body))] or self.points[:1]
        elif depth == 1:
            lines = (fresh + fresh_facts)[:max(1, len(body))] or self.points[:1]
        else:
            lines = (fresh_facts + fresh)[:max(1, len(body))] or facts[:1]
        hooks = [h for h in _hooks(self.base, p, self.tone) if h not in self.shown_hooks] or _hooks(self.base, p, self.tone)
        hook = hooks[0]
        price = next((v for a, v in p.facts.items() if a.lower().startswith("price")), None)
        cta = {0: f"Learn more about {name}", 1: f"Get {name} today",
               2: f"Get {name} · {price}" if price else f"Get {name} today"}[depth]
        slots = []
        bi = 0
        for s in self.base.slots:
            if s.role == "hook" or (s.index == self.base.slots[0].index and len(self.base.slots) > 1):
                line = hook if name in hook else f"{hook} Meet {name}."
                slots.append(s.model_copy(update={"narration": speakable(line, s.duration_s),
                                                  "on_screen_text": _short(hook, 6)}))
            elif s.role == "body" and lines:
                ln = lines[bi % len(lines)]
                bi += 1
                line = f"{name}: {ln[:1].lower() + ln[1:]}."
                slots.append(s.model_copy(update={"narration": speakable(line, s.duration_s),
                                                  "on_screen_text": _short(ln, 6)}))
            elif s.role == "cta":
                slots.append(s.model_copy(update={"narration": speakable(f"{cta}.", s.duration_s),
                                                  "on_screen_text": _short(cta, 6)}))
            else:
                slots.append(s)
        plan = self.base.model_copy(update={"hook": hook, "cta": cta, "slots": slots})
        if validate_storyboard(plan, p, duration_s=plan.duration_s):
            plan = self.base  # a variant that breaks a rule is never shown; the verified base is
        shown = claims_in(plan, p)
        c = CreativeFeatures(topics=features_of(plan, p, tone=self.tone, narrative=self.narrative,
                                                palette=self.palette).topics, tone=self.tone, narrative=self.narrative,
                             palette=self.palette, hook=plan.hook, claims=shown, depth=depth,
                             cta_strength=CTA_BY_DEPTH[depth], duration_s=plan.duration_s)
        return plan, c


# ------------------------------------------------------------------------------------------------------ run
COLUMNS = ["task", "run", "simulator_backend", "policy", "pair_id", "user_id", "product_id", "impression", "hook",
           "tone", "depth", "n_claims", "new_claims", "dwell_s", "watch_fraction", "skipped", "replayed", "converted",
           "cum_watch", "cum_conversions", "relevance", "fatigue", "error"]


def simulate_pair(sim: Any, user_id: str, pair_id: str, plan: Storyboard, product: Product, profile: Any,
                  palette_hex: list[str], impressions: int, out_dir: Path | None = None) -> list[dict[str, Any]]:
    """Both policies over ``impressions`` impressions of one pair; one row per policy x impression."""
    tone = profile.presentation.tone if (plan.personalized and profile is not None) else "informative"
    narrative = profile.presentation.narrative if (plan.personalized and profile is not None) else "montage"
    pal = (profile.visual.palette_name if (plan.personalized and profile is not None and profile.visual.palette_name)
           else palette_name(palette_hex))
    points = list(product.selling_points)
    rows = []
    for policy in POLICIES:
        base = features_of(plan, product, tone=tone, narrative=narrative, palette=pal)
        sess = sim.start(user_id, base)
        pol = ReflectorPolicy(plan, product, points, tone, narrative, pal) if policy == "reflector" else None
        cum_w, cum_c = 0.0, 0
        for k in range(impressions):
            if pol is None:
                shown_plan, c = plan, base
            else:
                shown_plan, c = pol.next(k)
            new_claims = len(set(c.claims) - sess.claims)
            fb, terms = sim.show(user_id, product.id, c, k, sess)
            if pol is not None:
                pol.observe(c, fb)
                if out_dir is not None:
                    write_json(out_dir / f"impression_{k}.json", {"plan": shown_plan, "features": c, "feedback": fb})
            cum_w += fb.watch_fraction
            cum_c += int(fb.converted)
            rows.append({"policy": policy, "impression": k + 1, "hook": c.hook, "tone": c.tone, "depth": c.depth,
                         "n_claims": len(c.claims), "new_claims": new_claims, "dwell_s": fb.dwell_s,
                         "watch_fraction": fb.watch_fraction, "skipped": fb.skipped, "replayed": fb.replayed,
                         "converted": fb.converted, "cum_watch": round(cum_w, 4), "cum_conversions": cum_c,
                         "relevance": round(terms.get("relevance", float("nan")), 4),
                         "fatigue": round(terms.get("fatigue", float("nan")), 4), "error": None})
    return rows


def run_evolution(paths: StudyPaths, task: str = "pcg", run: str = "nextads__offline__compositor__paper", *,
                  impressions: int = 5, limit_users: int = 0, simulator_backend: str = "offline",
                  seed: int = DEFAULT_SEED) -> Any:
    """Simulate K impressions of every pair of ``run`` (the first ``limit_users`` users of the benchmark) under
    both policies; writes ``paths.results / "evolution_<task>.parquet"`` (this run and simulator's rows
    replaced) and the reflector policy's plans; cached per pair. Returns the rows as a DataFrame."""
    import pandas as pd  # noqa: PLC0415

    from .pcg import read_profile  # noqa: PLC0415
    from .reflector import list_pairs  # noqa: PLC0415
    from .schemas import ProducerManifest  # noqa: PLC0415

    library = read_model(paths.library_json, ProductLibrary)
    histories = {u.user_id: u for u in read_jsonl(paths.bench_users(task), UserHistory)}
    truths: dict[str, GroundTruth] = {}
    for ds in sorted({h.dataset for h in histories.values()}):
        if paths.ground_truth(ds).is_file():
            truths.update({g.user_id: g for g in read_jsonl(paths.ground_truth(ds), GroundTruth)})
    sim = get_simulator(simulator_backend, truths, histories, seed=seed, cache_dir=paths.cache)
    pairs = list_pairs(paths, task, run)
    users: list[str] = []
    for _, m in pairs:
        if m.user_id not in users:
            users.append(m.user_id)
    if limit_users and limit_users > 0:
        users = users[:limit_users]
    cache = Cache(paths.cache)
    rows: list[dict[str, Any]] = []
    for pair_dir, man in pairs:
        if man.user_id not in users:
            continue
        head = {"task": task, "run": run, "simulator_backend": sim.name, "pair_id": man.pair_id,
                "user_id": man.user_id, "product_id": man.product_id}
        if simulator_backend == "offline" and man.user_id not in truths:
            rows.append({**head, "policy": "-", "impression": 0, "error": "no ground truth for this user"})
            continue
        try:
            product = library.get(man.product_id)
            plan = read_model(pair_dir / "plan.json", Storyboard)
            profile = read_profile(pair_dir) if (pair_dir / "profile.json").is_file() else None
            pman = read_model(pair_dir / "producer.json", ProducerManifest) if (pair_dir / "producer.json").is_file() else None
            pal = [str(x) for x in (pman.settings.get("palette") or [])] if pman else list(product.palette)
            key = content_key("evolution", CODE_VERSION, sim.name, seed, impressions, plan, product, profile, pal,
                              truths.get(man.user_id))
            hit = cache.get_json("evolution", key)
            if hit is not None:
                rows += [{**head, **r} for r in hit["rows"]]
                continue
            out_dir = paths.runs / "evolution" / task / run / man.pair_id
            prow = simulate_pair(sim, man.user_id, man.pair_id, plan, product, profile, pal, impressions, out_dir)
            cache.put_json("evolution", key, {"rows": prow})
            rows += [{**head, **r} for r in prow]
        except Exception as e:  # noqa: BLE001 - recorded against the pair
            rows.append({**head, "policy": "-", "impression": 0, "error": f"{type(e).__name__}: {e}"})
    df = pd.DataFrame(rows, columns=COLUMNS)
    from .store import replace_rows  # noqa: PLC0415

    replace_rows(paths.results / f"evolution_{task}.parquet", df,
                 lambda old: (old["run"] == run) & (old["simulator_backend"] == sim.name))
    return df


# -------------------------------------------------------------------------------------------- analysis
def per_user_curves(df: Any) -> Any:
    """Per policy x user x impression: mean over the user's pairs of the cumulative watch (sum of watch
    fractions so far), the cumulative conversion rate (pairs converted so far), skip, replay and watch."""
    ok = df[df["error"].isna() & (df["policy"] != "-")].copy()
    for c in ("skipped", "replayed", "converted"):
        ok[c] = ok[c].astype(float)
    ok["cum_conversions"] = ok["cum_conversions"].astype(float)
    return ok.groupby(["policy", "user_id", "impression"], sort=True).agg(
        cum_watch=("cum_watch", "mean"), cum_conversions=("cum_conversions", "mean"), watch=("watch_fraction", "mean"),
        skip=("skipped", "mean"), replay=("replayed", "mean")).reset_index()


def bootstrap_curves(df: Any, metric: str = "cum_watch", n_boot: int = 1000, seed: int = DEFAULT_SEED,
                     level: float = 0.95) -> Any:
    """Per policy x impression: the mean over users of ``metric`` with a percentile bootstrap interval over
    users (the same resampled users for every impression and policy)."""
    import pandas as pd  # noqa: PLC0415

    pu = per_user_curves(df)
    users = sorted(pu["user_id"].unique())
    if not users:
        return pd.DataFrame(columns=["policy", "impression", "mean", "lo", "hi"])
    g = rng(seed, "evolution", "bootstrap", metric)
    idx = g.integers(0, len(users), size=(n_boot, len(users)))
    out = []
    for (pol, k), sub in pu.groupby(["policy", "impression"], sort=True):
        v = sub.set_index("user_id")[metric].reindex(users).to_numpy(float)
        boots = np.nanmean(v[idx], axis=1)
        a = (1 - level) / 2
        out.append({"policy": pol, "impression": int(k), "mean": float(np.nanmean(v)),
                    "lo": float(np.nanquantile(boots, a)), "hi": float(np.nanquantile(boots, 1 - a))})
    return pd.DataFrame(out)


def comparison_table(df: Any, n_boot: int = 1000, seed: int = DEFAULT_SEED) -> Any:
    """After the last impression, per policy: cumulative watch, conversion rate, skip and replay rates (means
    over users, rounded), and the reflector - static difference with a paired bootstrap 95% interval."""
    import pandas as pd  # noqa: PLC0415

    pu = per_user_curves(df)
    if not len(pu):
        return pd.DataFrame(columns=["metric", "static", "reflector", "diff", "diff_lo", "diff_hi"])
    K = int(pu["impression"].max())
    users = sorted(pu["user_id"].unique())
    last = pu[pu["impression"] == K]
    rates = pu.groupby(["policy", "user_id"]).agg(skip=("skip", "mean"), replay=("replay", "mean")).reset_index()
    g = rng(seed, "evolution", "bootstrap", "table")
    idx = g.integers(0, len(users), size=(n_boot, len(users)))
    rows = []
    for metric, src in (("cum_watch", last), ("cum_conversions", last), ("skip", rates), ("replay", rates)):
        v = {p: src[src["policy"] == p].set_index("user_id")[metric].reindex(users).to_numpy(float) for p in POLICIES}
        d = v["reflector"] - v["static"]
        boots = np.nanmean(d[idx], axis=1)
        rows.append({"metric": {"cum_watch": f"cumulative watch after {K} impressions",
                                "cum_conversions": f"conversion rate after {K} impressions",
                                "skip": "skip rate", "replay": "replay rate"}[metric],
                     "static": round(float(np.nanmean(v["static"])), 3),
                     "reflector": round(float(np.nanmean(v["reflector"])), 3),
                     "diff": round(float(np.nanmean(d)), 3), "diff_lo": round(float(np.nanquantile(boots, 0.025)), 3),
                     "diff_hi": round(float(np.nanquantile(boots, 0.975)), 3)})
    return pd.DataFrame(rows)


def plot_curves(df: Any, title: str = "", n_boot: int = 1000, seed: int = DEFAULT_SEED):
    """Cumulative watch and conversion rate per impression, static vs. reflector, bootstrap bands over users."""
    import matplotlib.pyplot as plt  # noqa: PLC0415

    fig, axes = plt.subplots(1, 2, figsize=(10, 3.6))
    for ax, metric, lab in ((axes[0], "cum_watch", "cumulative watch (sum of watch fractions)"),
                            (axes[1], "cum_conversions", "conversion rate (cumulative)")):
        cur = bootstrap_curves(df, metric, n_boot, seed)
        for pol, colour in (("static", "#888888"), ("reflector", "#E63946")):
            c = cur[cur["policy"] == pol]
            if not len(c):
                continue
            ax.plot(c["impression"], c["mean"], marker="o", color=colour, label=pol)
            ax.fill_between(c["impression"], c["lo"], c["hi"], color=colour, alpha=0.2)
        ax.set_xlabel("impression")
        ax.set_ylabel(lab)
        ax.grid(alpha=0.3)
        ax.legend()
    if title:
        fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    return fig


__all__ = ["COLUMNS", "CreativeFeatures", "GroundTruthSimulator", "ModelSimulator", "POLICIES", "ReflectorPolicy",
           "Session", "bootstrap_curves", "claims_in", "comparison_table", "features_of", "get_simulator",
           "palette_name", "per_user_curves", "plot_curves", "run_evolution", "simulate_pair"]
