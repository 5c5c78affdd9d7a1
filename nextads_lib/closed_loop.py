"""The closed loop that learns (paper sections 3.2.4, 3.3): a policy that learns only from observed feedback,
compared honestly with the static replay, the rule-based Reflector policy and an oracle, on the default and a
held-out simulator; and a continual user model written per impression.

**Choices.** A creative of a pair is an :class:`Arm`: ``facet`` (which of the product's selling points the body
slots lead with, rotating from there, or ``facts``: the stated facts such as the price), ``hook`` style
(``scene``: the tone's hook about the matched topic's scenario; ``product``: "Meet/Introducing {name}";
``slogan``), ``tone`` (``topics.TONES``: the tone's hook, CTA and body wording), ``length`` (``short``: hook, one
body and CTA slot; ``long``: every slot of the Director's plan) and ``cta`` strength (``soft`` "learn more",
``medium`` the tone's CTA line, ``strong`` the tone's CTA with the price and "now"). :func:`build_plan` writes the
plan (validated by :func:`nextads_lib.director.validate_storyboard`; a plan that breaks a rule is never shown).

**Shown = rendered = perceived.** Every impression's plan is rendered by the pair's Producer (the compositor on
the embedded default, at a small size), checked by the Verifier (:func:`nextads_lib.verifier.verify_creative`
without OCR; a rejected creative is replaced by the verified static creative and counted as non-compliant), and
:func:`perceive` reads what the simulator sees from the rendered file: the duration measured from the mp4, the
palette from its decoded frames (k-means colours -> nearest named palette), and from the on-screen text of the
slots that are in the video (the plan as rendered): the topic (a scenario phrase on screen), the tone (a lexicon
of each tone's distinctive words), the claims (selling points / facts stated), depth and CTA strength (a lexicon).
No declared attribute reaches the simulator.

**Policies** (``POLICIES``): ``static`` (the Director's creative replayed), ``reflector`` (the rule-based
:class:`nextads_lib.evolution.ReflectorPolicy`), ``bandit`` (:class:`ThompsonBandit`) and ``oracle`` (knows the
simulator's hidden parameters and the user's ground truth; each impression it shows the arm of highest expected
reward given the session so far: a myopic upper bound, see :func:`expected_reward`). The oracle is a reference,
not a policy that could be deployed: unless ``render_oracle``, its creatives are not rendered; it is scored on the
features its plan's on-screen text shows (what :func:`perceive` reads from a compositor render of that plan, the
pair's palette and the planned duration: a test checks they agree) and gated by the same text verdicts.

**The bandit** is linear Thompson sampling (Agrawal & Goyal 2013) over the one-hot encoding ``x(a)`` of the five
choices plus a bias: a Bayesian linear regression ``r ~ N(x.theta, sigma^2)`` with prior
``theta ~ N(mu_0, s_0^2 I)``; each impression it draws ``theta~ = mu + v L z`` (``Sigma = L L^T``, ``z ~ N(0, I)``)
and shows ``argmax_a x(a).theta~``. ``v`` = ``explore`` is the exploration control (the paper's "controlled
randomness"): 0 is greedy on the posterior mean, 1 is Thompson sampling. Past observations are discounted by
``gamma`` per impression (discounted Thompson sampling for a non-stationary user: fatigue). The prior mean
``mu_0`` puts ``prior_bonus`` on the choices of the user's long-term profile (:class:`UserState`), nothing else:
the bandit reads feedback and the profile, never the simulator. The reward it learns from is
``reward = watch_fraction + 0.5 replayed + 1.0 converted``.

**Held-out simulator** (:class:`HeldOutSimulator`, parameters :data:`HELDOUT`): other weights, a preferred length
per user (from the hidden motion), a penalty on pushy CTAs at low interest, and another fatigue shape
(hyperbolic in recency-weighted repeats instead of exponential in counts); the default simulator is the
unchanged :class:`nextads_lib.evolution.GroundTruthSimulator`. No policy but the oracle sees either's parameters.

**Continual user model** (:class:`UserState`): a long-term profile (the Director's profile plus per-choice reward
statistics accumulated over the user's visits, i.e. pairs, in order) and a short-term state (the impressions of
the current visit); after every impression the profile-update directives of the feedback and of the Reflector
(:func:`nextads_lib.reflector.profile_directives`) are applied and the state is written to
``runs/evolution/<task>/<run>/<pair>/<simulator>/<policy>/impression_<k>/user_state.json``.
"""

from __future__ import annotations

import itertools
import math
import re
import shutil
import time
from pathlib import Path
from typing import Any

import numpy as np
from pydantic import Field

from .config import DEFAULT_SEED, StudyPaths
from .evolution import CreativeFeatures, GroundTruthSimulator, ReflectorPolicy, Session, _sigmoid
from .schemas import GroundTruth, ImpressionFeedback, Product, ProductLibrary, Schema, Storyboard, UserHistory
from .seed import rng
from .store import Cache, content_key, file_digest, read_jsonl, read_model, write_json
from .topics import TONES

CODE_VERSION = "closed-loop-1"
POLICIES = ("static", "reflector", "bandit", "oracle")
SIMULATORS = ("default", "heldout")
HOOK_STYLES = ("scene", "product", "slogan")
LENGTHS = ("short", "long")
CTAS = ("soft", "medium", "strong")
CHOICES = ("facet", "hook", "tone", "length", "cta")
#: prior mean on the long-term profile's choices (tuned, with explore/prior_sd/gamma, on the default simulator
#: only: scripts/bench_closed_loop.py; the held-out simulator was not looked at)
PRIOR_BONUS = 0.3
REWARD_WEIGHTS = {"watch_fraction": 1.0, "replayed": 0.5, "converted": 1.0}


def reward_of(fb: ImpressionFeedback) -> float:
    """``watch_fraction + 0.5 replayed + 1.0 converted`` (what every policy is scored on)."""
    return float(fb.watch_fraction + 0.5 * fb.replayed + 1.0 * fb.converted)


class Arm(Schema):
    facet: str
    hook: str
    tone: str
    length: str
    cta: str

    def key(self) -> str:
        return "|".join(getattr(self, c) for c in CHOICES)


def facets_of(product: Product, n_points: int = 3) -> list[str]:
    out = [f"point{i}" for i in range(min(n_points, len(product.selling_points)))]
    return out + (["facts"] if product.facts else [])


def arms_of(product: Product) -> list[Arm]:
    return [Arm(facet=f, hook=h, tone=t, length=ln, cta=c)
            for f, h, t, ln, c in itertools.product(facets_of(product), HOOK_STYLES, TONES, LENGTHS, CTAS)]


# ------------------------------------------------------------------------------------------------- plans
def _cap(s: str) -> str:
    return s[:1].upper() + s[1:] if s else s


def _price(product: Product) -> str | None:
    return next((v for k, v in product.facts.items() if k.lower().startswith("price")), None)


def hook_text(arm: Arm, plan: Storyboard, product: Product, variant: int) -> str:
    from .director import GENERIC_HOOKS, SCENARIOS, TONE_TEMPLATES  # noqa: PLC0415

    if arm.hook == "scene":
        scene = SCENARIOS.get(plan.matched_topic or "", ("every day", ""))[0]
        tpl = TONE_TEMPLATES[arm.tone]["hook"]
        return _cap(tpl[variant % len(tpl)].format(scene=scene, name=product.name, brand=product.brand))
    if arm.hook == "product":
        return GENERIC_HOOKS[variant % 2].format(name=product.name)
    return product.slogan


def cta_text(arm: Arm, product: Product, variant: int = 0) -> str:
    from .director import TONE_TEMPLATES  # noqa: PLC0415

    if arm.cta == "soft":
        return f"Learn more about {product.name}"
    line = TONE_TEMPLATES[arm.tone]["cta"][0].format(name=product.name).rstrip(".")  # one wording per tone
    if arm.cta == "strong":
        price = _price(product)
        return f"{line} · {price}, now" if price else f"{line}, now"
    return line


def body_lines(arm: Arm, product: Product, n: int) -> list[str]:
    facts = [f"{k}: {v}" for k, v in product.facts.items()]
    if arm.facet == "facts" and facts:
        return [facts[i % len(facts)] for i in range(n)]
    pts = list(product.selling_points) or facts
    i0 = int(arm.facet.removeprefix("point") or 0) if arm.facet.startswith("point") else 0
    return [pts[(i0 + i) % len(pts)] for i in range(n)]


def _short(text: str, n: int) -> str:
    ws = text.split()
    return " ".join(ws[:n]).rstrip(",;:") if len(ws) > n else text


def build_plan(base: Storyboard, product: Product, arm: Arm, variant: int = 0) -> Storyboard:
    """The plan of ``arm`` from the Director's plan ``base`` (same slots, cameras, assets; see the module
    docstring). ``short`` keeps the first slot, the first body slot and the last slot, re-timed back to back."""
    from .director import TONE_TEMPLATES, speakable  # noqa: PLC0415

    slots = sorted(base.slots, key=lambda s: s.start_s)
    if arm.length == "short" and len(slots) > 3:
        body = [s for s in slots[1:-1] if s.role == "body"][:1] or slots[1:2]
        slots = [slots[0], *body, slots[-1]]
    hook = hook_text(arm, base, product, variant)
    cta = cta_text(arm, product, variant)
    n_body = sum(s.role == "body" for s in slots)
    lines = body_lines(arm, product, max(1, n_body))
    out, t, bi = [], 0.0, 0
    for i, s in enumerate(slots):
        d = s.duration_s
        upd: dict[str, Any] = {"index": i, "start_s": round(t, 3), "end_s": round(t + d, 3)}
        if i == 0 and len(slots) > 1:
            line = hook if product.name in hook else f"{hook} Meet {product.name}."
            upd.update(role="hook", narration=speakable(line, d), on_screen_text=_short(hook, 7))
        elif i == len(slots) - 1:
            upd.update(role="cta", narration=speakable(f"{cta}.", d), on_screen_text=_short(cta, 9))
        else:
            ln = lines[bi % len(lines)]
            bi += 1
            upd.update(role="body", narration=speakable(f"{product.name}: {ln[:1].lower() + ln[1:]}.", d),
                       on_screen_text=_short(ln, 6))
        out.append(s.model_copy(update=upd))
        t += d
    return base.model_copy(update={"hook": hook, "cta": cta, "slots": out, "duration_s": round(t, 3)})


# ------------------------------------------------------------------------------------------- perception
def _tone_lexicon() -> dict[str, set[str]]:
    """Per tone, the words of its templates that no other tone's templates use (placeholders removed)."""
    from .director import TONE_TEMPLATES  # noqa: PLC0415

    def words(tone: str) -> set[str]:
        blob = " ".join(x for v in TONE_TEMPLATES[tone].values() for x in v)
        blob = re.sub(r"\{[a-z]+\}", " ", blob.lower())
        return set(re.findall(r"[a-z']+", blob))

    stop = {"a", "about", "and", "at", "for", "in", "it", "now", "of", "the", "this", "to", "up", "with", "you", "your"}
    ws = {t: words(t) - stop for t in TONES}
    return {t: ws[t] - set().union(*(ws[o] for o in TONES if o != t)) for t in TONES}


_TONE_WORDS = _tone_lexicon()


def tone_of_text(text: str) -> str:
    """The tone whose distinctive words the text uses most (``informative`` when none)."""
    toks = re.findall(r"[a-z']+", text.lower())
    counts = {t: sum(w in _TONE_WORDS[t] for w in toks) for t in TONES}
    best = max(TONES, key=lambda t: (counts[t], t == "informative"))
    return best if counts[best] > 0 else "informative"


def cta_strength_of_text(text: str, product: Product) -> float:
    """0.3 ("learn more" / "discover" / "experience"), 0.9 (the price or "now" on screen), else 0.6."""
    t = text.lower()
    price = (_price(product) or "").lower()
    if re.search(r"\bnow\b", t) or (price and price in t):
        return 0.9
    if re.search(r"\b(learn more|discover|experience)\b", t):
        return 0.3
    return 0.6


def topic_of_text(text: str) -> str | None:
    from .director import SCENARIOS  # noqa: PLC0415

    t = text.lower()
    for topic, (scene, _) in SCENARIOS.items():
        if scene.lower().removeprefix("your ") in t:
            return topic
    return None


def claims_of_text(text: str, product: Product) -> list[str]:
    t = text.lower()
    out = [p for p in product.selling_points if " ".join(p.lower().split()[:4]) in t]
    return out + [f"{k}: {v}" for k, v in product.facts.items() if v.lower() in t]


def frame_palette(video: Path, n: int = 3) -> str:
    from .director import nearest_palette  # noqa: PLC0415
    from .director.user_modeling import dominant_colours  # noqa: PLC0415
    from .media import probe, read_frames  # noqa: PLC0415

    info = probe(video)
    idx = np.linspace(0, max(0, info.n_frames - 1), n).round().astype(int).tolist()
    px = read_frames(video, idx).reshape(-1, 3)[::7].astype(np.float64)
    cols, shares = dominant_colours(px, k=4)
    return nearest_palette(cols, shares)[0]


def perceive(video: Path, plan: Storyboard, product: Product, *, palette: str | None = None) -> CreativeFeatures:
    """What a viewer sees of a rendered creative (module docstring): measured duration, frame palette (or
    ``palette``, the pair's palette measured once: the arms do not change the pictures), and the on-screen
    text of the slots that are in the video."""
    from .media import probe  # noqa: PLC0415

    info = probe(video)
    dur = info.n_frames / info.fps if info.fps else plan.duration_s
    texts = [s.on_screen_text for s in sorted(plan.slots, key=lambda s: s.start_s) if s.start_s < dur - 1e-6]
    return features_from_text(texts, product, duration_s=dur,
                              palette=palette if palette is not None else frame_palette(video))


def features_from_text(texts: list[str], product: Product, *, duration_s: float, palette: str) -> CreativeFeatures:
    blob = " ".join(texts)
    topics = {t: 0.5 for t in product.topics}
    top = topic_of_text(blob)
    if top:
        topics[top] = 1.0
    claims = claims_of_text(blob, product)
    facts = {f"{k}: {v}" for k, v in product.facts.items()}
    depth = 2 if any(c in facts for c in claims) else (1 if claims else 0)
    return CreativeFeatures(topics=topics or {"": 0.0}, tone=tone_of_text(blob), narrative="montage",
                            palette=palette, hook=texts[0] if texts else "", claims=claims, depth=depth,
                            cta_strength=cta_strength_of_text(texts[-1] if texts else "", product),
                            duration_s=max(duration_s, 1e-3))


# ------------------------------------------------------------------------------------------- simulators
class SimParams(Schema):
    """A response model's parameters (the held-out simulator's; hidden from every policy but the oracle)."""

    bias: float = -0.6
    w_relevance: float = 2.2
    w_style: float = 0.9
    w_fit: float = 0.8
    w_fatigue: float = 2.0
    fatigue_shape: str = "exp"  # "exp": 1 - exp(-(a h + b (1 - nu))); "hyperbolic": x / (1 + x), recency-weighted
    hook_weight: float = 0.45
    claim_weight: float = 0.8
    recency: float = 1.0  # weight of an impression j steps back: recency ** (j - 1)
    w_length: float = 0.0
    length_pref: dict[str, float] = Field(default_factory=lambda: {"dynamic": 6.0, "static": 9.0, "slow": 12.0})
    w_push: float = 0.0
    conv_bias: float = -4.2
    w_conv_cta: float = 1.2


HELDOUT = SimParams(bias=-0.9, w_relevance=1.6, w_style=1.4, w_fit=0.4, w_fatigue=2.6, fatigue_shape="hyperbolic",
                    hook_weight=1.0, claim_weight=0.6, recency=0.6, w_length=1.0, w_push=1.2, conv_bias=-3.8,
                    w_conv_cta=0.8)


class HeldOutSimulator(GroundTruthSimulator):
    """The ground-truth simulator with other weights and another fatigue shape (:data:`HELDOUT`)::

        x   = sum_{j>=1} recency^(j-1) (hook_weight [hook_{k-j} = hook] + claim_weight overlap_{k-j})
        f   = x / (1 + x)                                                      (hyperbolic, recency-weighted)
        len = exp(-((T - T*(g.motion)) / 4)^2)                                 length fit
        z   = bias + w_r r + w_s s + w_m m - w_f f + w_len len - w_push cta (1 - I) + e
        p_conv = sigmoid(conv_bias + 2 I + w_cta cta + 0.8 depth/2 + r - 1.5 f)

    (``overlap`` = the share of the creative's claims that impression stated); the rest as the default."""

    name = "offline-gt-heldout"

    def __init__(self, truths: dict[str, GroundTruth], seed: int = DEFAULT_SEED, params: SimParams = HELDOUT):
        super().__init__(truths, seed)
        self.params = params
        self._claims_by_k: dict[int, list[set[str]]] = {}

    def terms(self, user_id: str, c: CreativeFeatures, k: int, sess: Session) -> dict[str, float]:
        t = super().terms(user_id, c, k, sess)
        P, g = self.params, self.truths[user_id]
        hist = getattr(sess, "claim_history", [])
        x = 0.0
        for j, (h, cl) in enumerate(zip(reversed(sess.hooks), reversed(hist), strict=False), start=1):
            ov = len(set(c.claims) & cl) / max(1, len(c.claims)) if c.claims else 0.0
            x += P.recency ** (j - 1) * (P.hook_weight * (h == c.hook) + P.claim_weight * ov)
        f = x / (1.0 + x) if P.fatigue_shape == "hyperbolic" else 1.0 - math.exp(-x)
        tstar = P.length_pref.get(g.motion, 9.0)
        t.update(fatigue=f, length_fit=math.exp(-(((c.duration_s - tstar) / 4.0) ** 2)))
        return t

    def probabilities(self, t: dict[str, float], c: CreativeFeatures, e: float) -> tuple[float, float]:
        P = self.params
        p = _sigmoid(P.bias + P.w_relevance * t["relevance"] + P.w_style * t["style"] + P.w_fit * t["fit"]
                     - P.w_fatigue * t["fatigue"] + P.w_length * t["length_fit"]
                     - P.w_push * c.cta_strength * (1 - t["interest"]) + e)
        pc = _sigmoid(P.conv_bias + 2.0 * t["interest"] + P.w_conv_cta * c.cta_strength + 0.8 * c.depth / 2.0
                      + 1.0 * t["relevance"] - 1.5 * t["fatigue"])
        return p, pc

    def remember(self, sess: Session, c: CreativeFeatures) -> None:
        if not hasattr(sess, "claim_history"):
            sess.claim_history = []  # type: ignore[attr-defined]
        sess.claim_history.append(set(c.claims))  # type: ignore[attr-defined]


def expected_reward(sim: Any, user_id: str, c: CreativeFeatures, k: int, sess: Session) -> float:
    """The expected :func:`reward_of` of showing ``c`` now, under ``sim``'s hidden equations with the noise at 0
    (only the oracle calls this)."""
    t = sim.terms(user_id, c, k, sess)
    p, pc = sim.probabilities(t, c, 0.0)
    ew = p * min(1.0, 0.55 + 0.45 * p) + (1 - p) * (0.1 + 0.2 * p)
    return float(ew + 0.5 * p * 0.35 * p * p * (1 - t["fatigue"]) + (0.0 if sess.converted else p * pc))


def make_simulator(which: str, truths: dict[str, GroundTruth], seed: int) -> GroundTruthSimulator:
    if which == "default":
        return GroundTruthSimulator(truths, seed)
    if which == "heldout":
        return HeldOutSimulator(truths, seed)
    raise ValueError(f"simulator '{which}': choose one of {SIMULATORS}")


# ---------------------------------------------------------------------------------------------- bandit
class ThompsonBandit:
    """Linear Thompson sampling over the one-hot choices (module docstring); ``explore`` scales the posterior
    draw (0 = greedy), ``gamma`` discounts past observations per impression."""

    def __init__(self, arms: list[Arm], *, explore: float = 0.3, prior_sd: float = 0.3, noise_sd: float = 0.35,
                 gamma: float = 0.7, prior_mean: dict[str, float] | None = None, seed: int = DEFAULT_SEED,
                 key: tuple[Any, ...] = ()):
        self.arms = arms
        self.features = [f"{c}={v}" for c in CHOICES for v in sorted({getattr(a, c) for a in arms})] + ["bias"]
        self.index = {f: i for i, f in enumerate(self.features)}
        self.X = np.stack([self.x(a) for a in arms])
        d = len(self.features)
        self.explore, self.gamma, self.noise_var = float(explore), float(gamma), float(noise_sd) ** 2
        self.prior_prec = np.eye(d) / float(prior_sd) ** 2
        self.mu0 = np.zeros(d)
        for f, v in (prior_mean or {}).items():
            if f in self.index:
                self.mu0[self.index[f]] = v
        self.A = self.prior_prec.copy()
        self.b = self.prior_prec @ self.mu0
        self.rng = rng(seed, "closed_loop", "bandit", *key)

    def x(self, a: Arm) -> np.ndarray:
        v = np.zeros(len(self.features))
        for c in CHOICES:
            v[self.index[f"{c}={getattr(a, c)}"]] = 1.0
        v[-1] = 1.0
        return v

    @property
    def posterior(self) -> tuple[np.ndarray, np.ndarray]:
        cov = np.linalg.inv(self.A)
        return cov @ self.b, cov

    def choose(self) -> Arm:
        mu, cov = self.posterior
        z = self.rng.standard_normal(len(mu))
        theta = mu + self.explore * np.linalg.cholesky(cov + 1e-12 * np.eye(len(mu))) @ z
        s = self.X @ theta
        best = np.flatnonzero(s >= s.max() - 1e-12)
        return self.arms[int(best[self.rng.integers(len(best))])]

    def update(self, a: Arm, r: float) -> None:
        x = self.x(a)
        # discount the evidence (not the prior) toward the prior, then add the new observation
        self.A = self.prior_prec + self.gamma * (self.A - self.prior_prec) + np.outer(x, x) / self.noise_var
        self.b = self.prior_prec @ self.mu0 + self.gamma * (self.b - self.prior_prec @ self.mu0) + x * r / self.noise_var

    def means(self) -> dict[str, float]:
        mu, _ = self.posterior
        return {f: round(float(m), 4) for f, m in zip(self.features, mu, strict=True)}


# ------------------------------------------------------------------------------------- continual user model
class ProfileUpdate(Schema):
    """One profile-update directive: set ``field`` of the long-term profile to ``value`` (why, from whom)."""

    field: str
    value: str
    reason: str
    source: str = Field(description="'feedback' or 'reflector'")
    impression: int


class UserState(Schema):
    """The continual user model of one user (module docstring)."""

    user_id: str
    long_term: dict[str, Any] = Field(description="profile (tone, hook, length, cta, topics) + per-choice stats")
    visits: list[dict[str, Any]] = Field(default_factory=list, description="earlier visits (pairs): summaries")
    short_term: list[dict[str, Any]] = Field(default_factory=list, description="impressions of the current visit")
    updates: list[ProfileUpdate] = Field(default_factory=list)


def initial_state(user_id: str, profile: Any, base_arm: Arm) -> UserState:
    lt = {"tone": base_arm.tone, "hook": base_arm.hook, "length": base_arm.length, "cta": base_arm.cta,
          "topics": [t.topic for t in profile.topics] if profile is not None else [], "stats": {}}
    return UserState(user_id=user_id, long_term=lt)


def feedback_updates(state: UserState, k: int, min_n: int = 2, margin: float = 0.15) -> list[ProfileUpdate]:
    """From feedback: a choice value with at least ``min_n`` observations whose mean reward beats the profile's
    value by ``margin`` (the profile's value unobserved counts as its mean over all) becomes the profile's."""
    out = []
    stats = state.long_term["stats"]
    for c in ("tone", "hook", "length", "cta"):
        cur = state.long_term[c]
        vals = {v: s for key, s in stats.items() if key.startswith(f"{c}=") for v in [key.split("=", 1)[1]]}
        if not vals:
            continue
        allm = float(np.mean([s["mean"] for s in vals.values()]))
        cur_m = vals[cur]["mean"] if cur in vals else allm
        best = max(vals, key=lambda v: (vals[v]["n"] >= min_n, vals[v]["mean"]))
        if best != cur and vals[best]["n"] >= min_n and vals[best]["mean"] > cur_m + margin:
            out.append(ProfileUpdate(field=c, value=best, source="feedback", impression=k,
                                     reason=f"mean reward {vals[best]['mean']:.2f} over {vals[best]['n']} impressions "
                                            f"vs {cur_m:.2f} for '{cur}'"))
    return out


def observe_state(state: UserState, k: int, arm: Arm, c: CreativeFeatures, fb: ImpressionFeedback, r: float,
                  plan: Storyboard) -> list[ProfileUpdate]:
    from .reflector import profile_directives  # noqa: PLC0415

    state.short_term.append({"impression": k, "arm": arm.model_dump(), "perceived": {
        "tone": c.tone, "hook": c.hook, "claims": c.claims, "depth": c.depth, "cta_strength": c.cta_strength,
        "duration_s": round(c.duration_s, 3), "palette": c.palette}, "feedback": fb.model_dump(), "reward": round(r, 4)})
    stats = state.long_term["stats"]
    for ch in CHOICES:
        s = stats.setdefault(f"{ch}={getattr(arm, ch)}", {"n": 0, "mean": 0.0})
        s["n"] += 1
        s["mean"] = round(s["mean"] + (r - s["mean"]) / s["n"], 4)
    ups = feedback_updates(state, k) + profile_directives(state.long_term, state.short_term, k)
    for u in ups:
        state.long_term[u.field] = u.value
    state.updates += ups
    return ups


def end_visit(state: UserState, pair_id: str) -> UserState:
    rs = [x["reward"] for x in state.short_term]
    visit = {"pair_id": pair_id, "impressions": len(rs), "reward": round(float(sum(rs)), 4),
             "profile": {c: state.long_term[c] for c in ("tone", "hook", "length", "cta")}}
    return state.model_copy(update={"visits": state.visits + [visit], "short_term": []})


def prior_from_state(state: UserState, bonus: float) -> dict[str, float]:
    return {f"{c}={state.long_term[c]}": bonus for c in ("tone", "hook", "length", "cta")}


# ------------------------------------------------------------------------------------------------ render
class Shower:
    """Plans -> rendered, verified, perceived creatives for one pair (cached by content)."""

    def __init__(self, pair_dir: Path, product: Product, history: UserHistory | None, library: ProductLibrary,
                 cache: Cache, *, width: int, height: int, fps: float, work: Path):
        from .producer.edit import producer_for, producer_request  # noqa: PLC0415

        self.pair_dir, self.product, self.history, self.library, self.cache = pair_dir, product, history, library, cache
        self.req, man = producer_request(pair_dir)
        self.req = self.req.model_copy(update={"width": width, "height": height, "fps": fps})
        self.producer = producer_for(man, cache_dir=cache.root)
        self.work = work
        self.palette: str | None = None
        self._planned: dict[tuple[str, int], tuple[Storyboard, CreativeFeatures]] = {}
        self.bad_lines: set[tuple[str, str]] | None = None  # set by text_verdicts; None: the full Verifier runs
        self.global_violations: list[str] = []
        self.renders = 0
        self.seconds = 0.0

    def planned(self, base: Storyboard, arm: Arm, variant: int) -> tuple[Storyboard, CreativeFeatures]:
        """``build_plan`` and the features its text would show (what the oracle ranks), memoised per pair."""
        key = (arm.key(), variant)
        if key not in self._planned:
            p = build_plan(base, self.product, arm, variant)
            c = features_from_text([s.on_screen_text for s in p.slots], self.product, duration_s=p.duration_s,
                                   palette=self.palette or "")
            self._planned[key] = (p, c)
        return self._planned[key]

    def text_verdicts(self, base: Storyboard, arms: list[Arm]) -> None:
        """The Verifier's text checks (safety, privacy, fairness, copyright) once over every slot text the arms
        can show: one plan whose slots are the distinct (narration, on-screen text) lines of every arm's plan
        (both wordings), on the base plan's assets. A line a check flags (by its slot) is recorded as failing; a
        violation not tied to a slot fails every line. Each shown creative then needs only the video checks."""
        from . import verifier as V  # noqa: PLC0415
        from .schemas import Grounding  # noqa: PLC0415

        lines: dict[tuple[str, str], int] = {(sl.narration, sl.on_screen_text): i for i, sl in enumerate(base.slots)}
        for a in arms:
            for v in (0, 1):
                for sl in self.planned(base, a, v)[0].slots:
                    lines.setdefault((sl.narration, sl.on_screen_text), len(lines))
        key = content_key("closed_loop.lines", CODE_VERSION, base, self.product, self.history, sorted(lines))
        hit = self.cache.get_json("closed_loop", key)
        if hit is None:
            s0 = sorted(base.slots, key=lambda s: s.start_s)[0]
            slots = [s0.model_copy(update={"index": i, "start_s": 2.0 * i, "end_s": 2.0 * i + 2.0, "role": "body",
                                           "narration": n, "on_screen_text": o})
                     for (n, o), i in lines.items()]
            lib_plan = base.model_copy(update={"slots": slots, "duration_s": 2.0 * len(slots)})
            grounding = read_model(self.pair_dir / "grounding.json", Grounding)
            checks = [V.check_safety(lib_plan, self.product), V.check_privacy(lib_plan, self.product, self.history, grounding),
                      V.check_fairness(lib_plan, self.product),
                      V.check_copyright(lib_plan, self.product, self.library, grounding, self.history)]
            bad = sorted({v.evidence.slot for c in checks for v in c.violations
                          if v.severity == "severe" and v.evidence.slot is not None})
            glob = [f"{v.check}/{v.rule}: {v.message}" for c in checks for v in c.violations
                    if v.severity == "severe" and v.evidence.slot is None]
            hit = {"bad": bad, "global": glob}
            self.cache.put_json("closed_loop", key, hit)
        bad_idx = set(hit["bad"])
        self.bad_lines = {ln for ln, i in lines.items() if i in bad_idx}
        self.global_violations = list(hit["global"])

    def verify(self, plan: Storyboard, video: Path) -> tuple[str, list[str]]:
        """The decision on a shown creative: the recorded text verdicts of its lines plus the video checks
        (its on-screen text rendered legibly, the "AI Created" label in the plan and in the frames)."""
        from . import verifier as V  # noqa: PLC0415

        th = V.THRESHOLDS
        comp = [V.check_rendering(plan, video),
                V.check_disclosure(plan, video, n_frames=int(th["label_frames"]), read_label=False,
                                   min_label_s=float(th["min_label_s"]))]
        decision, why = V.decide(comp, None, th)
        flagged = [f"reject: text check flagged slot {s.index} ('{s.on_screen_text}')" for s in plan.slots
                   if (s.narration, s.on_screen_text) in self.bad_lines]
        flagged += [f"reject: {g}" for g in self.global_violations]
        return ("reject" if flagged else decision), flagged + why

    def show(self, plan: Storyboard, *, full: bool = False) -> dict[str, Any]:
        from .verifier import verify_creative  # noqa: PLC0415

        t0 = time.perf_counter()
        key = content_key("closed_loop.show", CODE_VERSION, full, self.producer.cache_key(
            self.req.model_copy(update={"storyboard": plan})), self.product, self.history,
            sorted(self.bad_lines) if self.bad_lines is not None else None, self.global_violations)
        hit = self.cache.get_json("closed_loop", key)
        if hit is not None:
            out = {**hit, "features": CreativeFeatures.model_validate(hit["features"]), "cached": True}
            if self.palette is None:  # the pair's palette, as measured when this creative was first rendered
                self.palette = out["features"].palette
                self._planned = {}
            return out
        d = self.work / key[:16]
        d.mkdir(parents=True, exist_ok=True)
        write_json(d / "plan.json", plan)
        shutil.copyfile(self.pair_dir / "grounding.json", d / "grounding.json")
        man = self.producer.render(self.req.model_copy(update={"storyboard": plan}), d / "creative.mp4")
        self.renders += int(not self.producer.last_cached)
        if full or self.bad_lines is None:
            ver = verify_creative(d, pair_id=self.pair_dir.name, task="pcg", run="closed_loop", product=self.product,
                                  history=self.history, library=self.library, thresholds={"ocr_frames_per_slot": 0})
            decision, rationales = ver.decision, ver.rationales
        else:
            decision, rationales = self.verify(plan, d / "creative.mp4")
        if self.palette is None:
            self.palette = frame_palette(d / "creative.mp4")
            self._planned = {}  # text features planned before the palette was measured
        c = perceive(d / "creative.mp4", plan, self.product, palette=self.palette)
        sec = time.perf_counter() - t0
        self.seconds += sec
        out = {"features": c, "decision": decision, "passed": decision != "reject",
               "rationale": "; ".join(rationales[:2]), "cost_usd": float(man.cost_usd), "seconds": round(sec, 4),
               "video_sha": file_digest(d / "creative.mp4")[:16]}
        self.cache.put_json("closed_loop", key, {**out, "features": c.model_dump(mode="json")})
        shutil.rmtree(d, ignore_errors=True)
        return {**out, "cached": False}


# -------------------------------------------------------------------------------------------------- run
def base_arm(plan: Storyboard, product: Product, profile: Any) -> Arm:
    tone = profile.presentation.tone if (plan.personalized and profile is not None) else "informative"
    return Arm(facet=facets_of(product)[0], hook="scene" if plan.personalized else "product",
               tone=tone if tone in TONES else "informative", length="long", cta="medium")


COLUMNS = ["task", "run", "simulator", "policy", "pair_id", "user_id", "product_id", "visit", "impression", "arm",
           "tone", "hook", "length_s", "cta_strength", "n_claims", "watch_fraction", "skipped", "replayed",
           "converted", "reward", "cum_reward", "passed", "cost_usd", "seconds", "profile_updates", "error"]


def run_visit(shower: Shower, sim: Any, policy: str, *, user_id: str, plan: Storyboard, product: Product,
              profile: Any, state: UserState, impressions: int, explore: float, seed: int, out_dir: Path | None,
              base: dict[str, Any], render_oracle: bool = False) -> tuple[list[dict[str, Any]], UserState]:
    """One visit (pair) under one policy: ``impressions`` impressions, each planned, rendered, verified,
    perceived and shown; the user state updated and written per impression."""
    arms = arms_of(product)
    b0 = base_arm(plan, product, profile)
    bandit = ThompsonBandit(arms, explore=explore, prior_mean={**prior_from_state(state, PRIOR_BONUS), "bias": 0.5},
                            seed=seed, key=(user_id, product.id, sim.name)) if policy == "bandit" else None
    refl = None
    if policy == "reflector":
        nar = profile.presentation.narrative if (plan.personalized and profile is not None) else "montage"
        refl = ReflectorPolicy(plan, product, list(product.selling_points), b0.tone, nar, shower.palette or "")
    sess = sim.start(user_id, base["features"])
    rows, cum = [], 0.0
    for k in range(impressions):
        arm = b0
        if policy == "static":
            shown_plan = plan
        elif policy == "reflector":
            shown_plan, _ = refl.next(k)
        elif policy == "bandit":
            arm = bandit.choose()
            shown_plan, _ = shower.planned(plan, arm, k % 2)
        else:  # oracle: best expected reward under the hidden equations, from the text-perceived features
            best, best_v = None, -1.0
            for a in arms:
                p, c = shower.planned(plan, a, k % 2)
                v = expected_reward(sim, user_id, c, k, sess)
                if v > best_v:
                    best, best_v = (a, p), v
            arm, shown_plan = best
        from .director import validate_storyboard  # noqa: PLC0415

        errs = validate_storyboard(shown_plan, product, duration_s=shown_plan.duration_s) if policy != "static" else []
        if errs:
            s = {"passed": False, "rationale": "; ".join(errs[:2])}
        elif policy == "oracle" and not render_oracle:  # the bound: its plan's text verdicts and text features
            bad = [sl.index for sl in shown_plan.slots if (sl.narration, sl.on_screen_text) in (shower.bad_lines or set())]
            s = {"passed": not bad and not shower.global_violations, "features": shower.planned(plan, arm, k % 2)[1],
                 "cost_usd": 0.0, "seconds": 0.0, "cached": True}
        else:
            s = shower.show(shown_plan)
        passed = bool(s["passed"])
        if not passed:  # never shown: the verified static creative goes out instead
            shown_plan, s = plan, base
        c = s["features"]
        fb, _ = sim.show(user_id, product.id, c, k, sess)
        r = reward_of(fb)
        cum += r
        if bandit is not None:
            bandit.update(arm, r)
        if refl is not None:
            refl.observe(c, fb)
        ups = observe_state(state, k, arm, c, fb, r, shown_plan)
        if out_dir is not None:
            d = out_dir / f"impression_{k}"
            write_json(d / "user_state.json", state)
            write_json(d / "impression.json", {"policy": policy, "arm": arm, "plan": shown_plan, "perceived": c,
                                               "feedback": fb, "reward": r, "passed": passed,
                                               "bandit_means": bandit.means() if bandit else None})
        rows.append({"policy": policy, "impression": k + 1, "arm": arm.key() if policy in ("bandit", "oracle") else policy,
                     "tone": c.tone, "hook": c.hook, "length_s": round(c.duration_s, 3),
                     "cta_strength": c.cta_strength, "n_claims": len(c.claims), "watch_fraction": fb.watch_fraction,
                     "skipped": fb.skipped, "replayed": fb.replayed, "converted": fb.converted, "reward": round(r, 4),
                     "cum_reward": round(cum, 4), "passed": passed, "cost_usd": float(s.get("cost_usd", 0.0)),
                     "seconds": 0.0 if s.get("cached") else float(s.get("seconds", 0.0)),
                     "profile_updates": "; ".join(f"{u.source}: {u.field}->{u.value}" for u in ups), "error": None})
    return rows, state


def load_truths(paths: StudyPaths, histories: dict[str, UserHistory]) -> dict[str, GroundTruth]:
    truths: dict[str, GroundTruth] = {}
    for ds in sorted({h.dataset for h in histories.values()}):
        if paths.ground_truth(ds).is_file():
            truths.update({g.user_id: g for g in read_jsonl(paths.ground_truth(ds), GroundTruth)})
    return truths


def run_closed_loop(paths: StudyPaths, task: str = "pcg", run: str = "nextads__offline__compositor__paper", *,
                    impressions: int = 10, n_users: int = 8, visits: int = 1, explore: float = 0.3,
                    simulators: tuple[str, ...] = SIMULATORS, policies: tuple[str, ...] = POLICIES,
                    width: int = 72, height: int = 128, fps: float = 4.0, render_oracle: bool = False,
                    seed: int = DEFAULT_SEED) -> Any:
    """Every policy x simulator over the first ``visits`` pairs of the first ``n_users`` users with ground truth;
    writes ``paths.results / "closed_loop_<task>.parquet"`` and the per-impression user states. Returns the rows."""
    import pandas as pd  # noqa: PLC0415

    from .pcg import read_profile  # noqa: PLC0415
    from .reflector import list_pairs  # noqa: PLC0415
    from .store import write_parquet  # noqa: PLC0415

    library = read_model(paths.library_json, ProductLibrary)
    histories = {u.user_id: u for u in read_jsonl(paths.bench_users(task), UserHistory)}
    truths = load_truths(paths, histories)
    by_user: dict[str, list[tuple[Path, Any]]] = {}
    for pair_dir, man in list_pairs(paths, task, run):
        if man.user_id in truths and (pair_dir / "creative.mp4").is_file():
            by_user.setdefault(man.user_id, []).append((pair_dir, man))
    users = list(by_user)[:n_users]
    cache = Cache(paths.cache)
    root = paths.runs / "evolution" / task / run
    rows: list[dict[str, Any]] = []
    for which in simulators:
        sim = make_simulator(which, truths, seed)
        for uid in users:
            states: dict[str, UserState] = {}
            for vi, (pair_dir, man) in enumerate(by_user[uid][:visits]):
                head = {"task": task, "run": run, "simulator": which, "pair_id": man.pair_id, "user_id": uid,
                        "product_id": man.product_id, "visit": vi}
                try:
                    product = library.get(man.product_id)
                    plan = read_model(pair_dir / "plan.json", Storyboard)
                    profile = read_profile(pair_dir) if (pair_dir / "profile.json").is_file() else None
                    shower = Shower(pair_dir, product, histories.get(uid), library, cache, width=width, height=height,
                                    fps=fps, work=paths.interim / "closed_loop_work")
                    shower.text_verdicts(plan, arms_of(product))
                    base = shower.show(plan)
                    for pol in policies:
                        st = states.get(pol) or initial_state(uid, profile, base_arm(plan, product, profile))
                        prow, st = run_visit(shower, sim, pol, user_id=uid, plan=plan, product=product, profile=profile,
                                             state=st, impressions=impressions, explore=explore, seed=seed,
                                             out_dir=root / man.pair_id / which / pol, base=base,
                                             render_oracle=render_oracle)
                        states[pol] = end_visit(st, man.pair_id)
                        rows += [{**head, **r} for r in prow]
                except Exception as e:  # noqa: BLE001 - recorded against the pair
                    rows.append({**head, "policy": "-", "impression": 0, "error": f"{type(e).__name__}: {e}"})
    df = pd.DataFrame(rows, columns=COLUMNS)
    write_parquet(paths.results / f"closed_loop_{task}.parquet", df)
    return df


# ------------------------------------------------------------------------------------------------ analysis
def _ok(df: Any) -> Any:
    return df[df["error"].isna() & (df["policy"] != "-")]


def per_user(df: Any) -> Any:
    """Per simulator x policy x user x impression: the mean over the user's visits of the cumulative reward,
    and of the cumulative regret to the oracle (same user, visit, simulator, impression)."""
    ok = _ok(df).copy()
    cum = ok.groupby(["simulator", "policy", "user_id", "impression"]).agg(cum_reward=("cum_reward", "mean"))
    cum = cum.reset_index()
    orc = cum[cum["policy"] == "oracle"].rename(columns={"cum_reward": "oracle"}).drop(columns="policy")
    cum = cum.merge(orc, on=["simulator", "user_id", "impression"], how="left")
    cum["regret"] = cum["oracle"] - cum["cum_reward"]
    return cum


def _boot(v: np.ndarray, idx: np.ndarray) -> tuple[float, float]:
    b = np.nanmean(v[idx], axis=1)
    return float(np.nanquantile(b, 0.025)), float(np.nanquantile(b, 0.975))


def comparison_table(df: Any, n_boot: int = 1000, seed: int = DEFAULT_SEED) -> Any:
    """After the last impression, per simulator x policy: cumulative reward, regret to the oracle, the
    difference to static with a paired bootstrap 95% interval over users, diversity (distinct creatives
    shown / impressions), compliance rate (proposals the Verifier passed) and cost per impression."""
    import pandas as pd  # noqa: PLC0415

    ok = _ok(df)
    if not len(ok):
        return pd.DataFrame()
    pu = per_user(df)
    K = int(pu["impression"].max())
    last = pu[pu["impression"] == K]
    out = []
    for which, sub in last.groupby("simulator", sort=False):
        users = sorted(sub["user_id"].unique())
        idx = rng(seed, "closed_loop", "bootstrap", which).integers(0, len(users), size=(n_boot, len(users)))
        v = {p: sub[sub["policy"] == p].set_index("user_id")["cum_reward"].reindex(users).to_numpy(float)
             for p in sub["policy"].unique()}
        for pol in [p for p in POLICIES if p in v]:
            o = ok[(ok["simulator"] == which) & (ok["policy"] == pol)]
            div = o.groupby("pair_id")["video"].nunique().mean() / K if "video" in o else \
                o.groupby("pair_id").apply(lambda g: g[["hook", "tone", "length_s", "cta_strength", "n_claims"]]
                                           .drop_duplicates().shape[0], include_groups=False).mean() / K
            d = v[pol] - v["static"] if "static" in v else np.full(len(users), np.nan)
            lo, hi = _boot(d, idx)
            reg = v["oracle"] - v[pol] if "oracle" in v else np.full(len(users), np.nan)
            rlo, rhi = _boot(reg, idx)
            out.append({"simulator": which, "policy": pol, "users": len(users),
                        "cum_reward": round(float(np.nanmean(v[pol])), 3),
                        "vs_static": round(float(np.nanmean(d)), 3), "vs_static_lo": round(lo, 3),
                        "vs_static_hi": round(hi, 3), "regret": round(float(np.nanmean(reg)), 3),
                        "regret_lo": round(rlo, 3), "regret_hi": round(rhi, 3), "diversity": round(float(div), 3),
                        "compliance": round(float(o["passed"].astype(float).mean()), 3),
                        "conversions": round(float(o.groupby("pair_id")["converted"].any().mean()), 3),
                        "usd_per_imp": round(float(o["cost_usd"].mean()), 4)})
    return pd.DataFrame(out)


def regret_curves(df: Any, n_boot: int = 500, seed: int = DEFAULT_SEED) -> Any:
    """Per simulator x policy x impression: mean cumulative regret to the oracle with a bootstrap interval."""
    import pandas as pd  # noqa: PLC0415

    pu = per_user(df)
    out = []
    for (which, pol, k), sub in pu.groupby(["simulator", "policy", "impression"], sort=True):
        v = sub["regret"].to_numpy(float)
        idx = rng(seed, "closed_loop", "curve", which).integers(0, len(v), size=(n_boot, len(v)))
        lo, hi = _boot(v, idx)
        out.append({"simulator": which, "policy": pol, "impression": int(k), "regret": float(np.nanmean(v)),
                    "lo": lo, "hi": hi, "cum_reward": float(sub["cum_reward"].mean())})
    return pd.DataFrame(out)


COLOURS = {"static": "#888888", "reflector": "#E63946", "bandit": "#1D3557", "oracle": "#2A9D8F"}


def plot_regret(df: Any, title: str = ""):
    import matplotlib.pyplot as plt  # noqa: PLC0415

    cur = regret_curves(df)
    sims = list(dict.fromkeys(cur["simulator"]))
    fig, axes = plt.subplots(1, max(1, len(sims)), figsize=(5 * max(1, len(sims)), 3.6), squeeze=False)
    for ax, which in zip(axes[0], sims, strict=False):
        for pol in POLICIES:
            c = cur[(cur["simulator"] == which) & (cur["policy"] == pol)]
            if not len(c) or pol == "oracle":
                continue
            ax.plot(c["impression"], c["regret"], marker="o", color=COLOURS[pol], label=pol)
            ax.fill_between(c["impression"], c["lo"], c["hi"], color=COLOURS[pol], alpha=0.2)
        ax.set_title(f"{which} simulator", fontsize=9)
        ax.set_xlabel("impression")
        ax.set_ylabel("cumulative regret to the oracle")
        ax.grid(alpha=0.3)
        ax.legend()
    if title:
        fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    return fig


__all__ = ["Arm", "CHOICES", "COLUMNS", "HELDOUT", "HeldOutSimulator", "POLICIES", "ProfileUpdate", "SIMULATORS",
           "Shower", "SimParams", "ThompsonBandit", "UserState", "arms_of", "build_plan", "comparison_table",
           "expected_reward", "features_from_text", "make_simulator", "perceive", "plot_regret", "regret_curves",
           "reward_of", "run_closed_loop", "run_visit", "tone_of_text"]
