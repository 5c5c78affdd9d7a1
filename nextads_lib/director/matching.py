"""Director stage 2, user-product matching (paper 3.2.1, 5.1.1, 5.3.1): the compatibility of the product with
each of the user's topics, the best topic/scenario, the selling points most appealing to the user first,
and the fallback to a generic plan below the compatibility threshold.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from pydantic import Field

from .. import embed
from ..backends import ModelRequest, TextPart, register_offline
from ..schemas import (
    MatchResult,
    Product,
    Schema,
    TopicCompatibility,
    UserProfile,
)
from ..topics import TOPICS, topic_name, topic_text
from .common import product_brief


#: Default compatibility threshold of :func:`match_product`. With the offline scorer a topic the product
#: declares scores at least 0.55, an undeclared one at most 0.45 (0.45 x its text similarity); 0.35 keeps
#: every declared topic and an undeclared one only when its text is strongly related (cosine >= ~0.42), so
#: a pair that would need a "forced" match falls back to the generic plan (paper section 5.3.1).
DEFAULT_COMPAT_THRESHOLD = 0.35


class MatchAnswer(Schema):
    """What the backend answers for ``director.match``."""

    candidates: list[TopicCompatibility] = Field(min_length=1)
    best_topic: str
    selling_points: list[str] = Field(min_length=1)


MATCH_SYSTEM = (
    "You are the Director of a personalized video-advertising system. Given a user's topical interests and a "
    "product, score the compatibility (0 to 1) of the product with EACH of the user's topics, with a short "
    "reason; choose the topic/scenario that best fits the product's positioning (compatibility first, not "
    "merely the user's strongest interest); list the product's own selling points, most appealing to this "
    "user first (use the product's wording; add nothing). Answer with JSON only."
)


def build_match_request(profile: UserProfile, product: Product) -> ModelRequest:
    """The ``director.match`` request: the user's topics and presentation, the product's facts."""
    ctx = {
        "user_topics": [{"topic": t.topic, "weight": t.weight, "name": topic_name(t.topic)} for t in profile.topics],
        "presentation": profile.presentation.model_dump(mode="json"),
        "product": product_brief(product),
    }
    lines = "\n".join(f"- {t['topic']} ({t['name']}), weight {t['weight']:.2f}" for t in ctx["user_topics"])
    text = (f"User topics:\n{lines}\n\nProduct: {product.name} by {product.brand} ({product.subcategory}). "
            f"{product.description}\nSelling points: {'; '.join(product.selling_points)}")
    return ModelRequest(task="director.match", system=MATCH_SYSTEM, parts=[TextPart(text)], schema=MatchAnswer,
                        context=ctx, item=f"user {profile.user_id} x product {product.id}")


def match_product(profile: UserProfile, product: Product, backend: Any,
                  threshold: float = DEFAULT_COMPAT_THRESHOLD) -> MatchResult:
    """Stage 2: compatibility of ``product`` with each of the user's topics and the best topic; below
    ``threshold`` the result has ``fallback=True`` and a reason, and a generic plan is made (paper 5.3.1:
    forced personalization under low compatibility)."""
    req = build_match_request(profile, product)
    ans: MatchAnswer = backend.complete(req).value
    by_topic = {c.topic: c for c in ans.candidates}
    best = ans.best_topic if ans.best_topic in by_topic else max(ans.candidates, key=lambda c: c.score).topic
    score = by_topic[best].score
    points = [p for p in ans.selling_points if p in product.selling_points]
    points += [p for p in product.selling_points if p not in points]  # a model may drop some: keep them all, last
    fallback = score < threshold
    reason = (f"best compatibility {score:.2f} ({topic_name(best)}) is below the threshold {threshold:.2f}: "
              f"forcing '{topic_name(best)}' onto {product.name} would be incoherent, so a generic plan is made"
              if fallback else "")
    return MatchResult(user_id=profile.user_id, product_id=product.id, backend=backend.name,
                       candidates=ans.candidates, best_topic=best, best_score=score, selling_points=points,
                       fallback=fallback, fallback_reason=reason)


def _product_text(p: dict[str, Any]) -> str:
    return f"{p['name']} ({p['subcategory']}). {p['description']} {' '.join(p['selling_points'])}"


@register_offline("director.match")
def offline_match(req: ModelRequest) -> MatchAnswer:
    """Offline matching: for each user topic, ``score = 0.55 * [topic in product.topics] + 0.45 * sem`` where
    ``sem = clip((cos - 0.05) / 0.5, 0, 1)`` and ``cos`` is the MiniLM cosine of the topic's text with the
    product's name, description and selling points. The best topic maximises score (+0.05 x the user's
    weight to break near-ties). Selling points are ordered by their cosine with the best topic's text."""
    ctx = req.context
    prod = ctx["product"]
    ptext = _product_text(prod)
    topics = [t["topic"] for t in ctx["user_topics"]]
    weights = {t["topic"]: float(t["weight"]) for t in ctx["user_topics"]}
    ttexts = [topic_text(t) if t in TOPICS else t for t in topics]
    cos = embed.similarity(ttexts, [ptext])[:, 0]
    cands = []
    for t, c in zip(topics, cos):
        listed = t in prod["topics"]
        sem = float(np.clip((c - 0.05) / 0.5, 0, 1))
        score = round(min(1.0, 0.55 * listed + 0.45 * sem), 4)
        why = f"text similarity of '{topic_name(t)}' with {prod['name']} is {float(c):.2f}"
        why += "; the product declares this topic" if listed else "; not a topic the product declares"
        cands.append(TopicCompatibility(topic=t, score=score, reason=why))
    best = max(cands, key=lambda c: c.score + 0.05 * weights.get(c.topic, 0)).topic
    btext = topic_text(best) if best in TOPICS else best
    sp = list(prod["selling_points"])
    sims = embed.similarity([btext], sp)[0]
    order = sorted(range(len(sp)), key=lambda i: (-round(float(sims[i]), 6), i))
    return MatchAnswer(candidates=cands, best_topic=best, selling_points=[sp[i] for i in order])
