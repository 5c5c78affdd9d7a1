"""Validation of a storyboard (the rules every plan must pass before it is produced): slot timing, roles,
narration pace, product naming, claims backed by the product's facts, no personal data from the history
(:func:`personal_tokens`), PCI start/return, known asset ids, the disclosure label.
"""

from __future__ import annotations

import re

from ..config import AI_LABEL
from ..schemas import Product, Storyboard, UserHistory
from ..topics import TOPICS
from .common import HostContext, MAX_NARRATION_WPS, MAX_SLOT_S, MIN_SLOT_S, _EPS, _words, narration_budget


_ABSOLUTE_CLAIMS = ("guarantee", "guaranteed", "#1", "number one", "best in the world", "cures", "cure ",
                    "clinically proven", "risk-free", "100%", "never fails", "forever")
_COMMON_CAPS = {
    "I", "I'm", "I've", "I'll", "I'd", "The", "A", "An", "My", "Our", "We", "You", "Your", "This", "That", "Today",
    "Tonight", "Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday", "January",
    "February", "March", "April", "May", "June", "July", "August", "September", "October", "November",
    "December", "OK", "AI", "TV", "DIY", "POV", "PR", "Day", "Part", "Step", "Top", "New",
}


def personal_tokens(history: UserHistory) -> set[str]:
    """Strings from the history that must never appear in a creative's text: the user id, @handles, and
    capitalised words that occur mid-sentence in the history's titles/texts (names, places), minus common
    words and the taxonomy's own words."""
    toks = {history.user_id}
    vocab = {w.lower() for tid, (name, desc, kws) in TOPICS.items() for w in _words(f"{tid} {name} {desc} {' '.join(kws)}")}
    for it in history.items:
        for text in (it.title, it.text):
            toks.update(re.findall(r"@[A-Za-z0-9_.]{2,}", text))
            for sent in re.split(r"(?<=[.!?])\s+|\n", text):
                ws = sent.split()
                for w in ws[1:]:
                    w = w.strip(",.;:!?\"'()[]")
                    if (len(w) >= 3 and w[0].isupper() and w not in _COMMON_CAPS and w.lower() not in vocab
                            and re.fullmatch(r"[A-Z][A-Za-z'-]+", w)):
                        toks.add(w)
    return {t for t in toks if t}


def _numbers(text: str) -> set[str]:
    return {n.replace(",", "") for n in re.findall(r"\d+(?:[.,]\d+)?", text)}


def validate_storyboard(
    sb: Storyboard, product: Product, history: UserHistory | None = None, duration_s: float | None = None,
    *, host: HostContext | None = None, asset_ids: set[str] | None = None,
) -> list[str]:
    """Every rule the storyboard breaks, as readable errors (empty list = valid):

    1. slots contiguous from 0 with indices 0..n-1, ending at the storyboard's (and the requested) duration;
    2. every slot lasts 2 to 3 s;
    3. slot 0 is the hook (role 'hook', unless it is the only slot) and the hook text is not empty; the last
       slot and only it has role 'cta', and the CTA text is not empty;
    4. the product is named (its name or brand) in the narration, on-screen text, hook or CTA;
    5. no claim outside the product's facts: every number in the text appears in the product's facts,
       selling points, slogan or description; no forbidden claim; no absolute claim (guaranteed, #1,
       clinically proven ...) the product text does not make;
    6. no personal data from the history (:func:`personal_tokens`) in the text;
    7. PCI (``host``): starts from the integration frame, returns to it, states the host connection;
    8. slots reference only known asset ids (when ``asset_ids`` is given); disclosure is the AI label;
    9. every slot's narration can be spoken within the slot: at most ``MAX_NARRATION_WPS`` words per second.
    """
    errs: list[str] = []
    slots = sb.slots
    if [s.index for s in slots] != list(range(len(slots))):
        errs.append(f"slot indices must be 0..{len(slots) - 1} in order, got {[s.index for s in slots]}")
    if slots and abs(slots[0].start_s) > _EPS:
        errs.append(f"slot 0 must start at 0 s, starts at {slots[0].start_s}")
    for a, b in zip(slots, slots[1:]):
        if abs(b.start_s - a.end_s) > 1e-3:
            errs.append(f"slot {b.index} starts at {b.start_s} s but slot {a.index} ends at {a.end_s} s (not contiguous)")
    for s in slots:
        if not (MIN_SLOT_S - 1e-3 <= s.duration_s <= MAX_SLOT_S + 1e-3):
            errs.append(f"slot {s.index} lasts {s.duration_s:.2f} s, outside {MIN_SLOT_S:g}-{MAX_SLOT_S:g} s")
    for s in slots:
        n_words, cap = len(s.narration.split()), narration_budget(s.duration_s, MAX_NARRATION_WPS)
        if n_words > cap:
            errs.append(f"slot {s.index} narration has {n_words} words, more than the {cap} that can be spoken "
                        f"in its {s.duration_s:g} s ({MAX_NARRATION_WPS:g} words per second)")
    want = sb.duration_s if duration_s is None else duration_s
    if slots and abs(slots[-1].end_s - want) > 1e-3:
        errs.append(f"the last slot ends at {slots[-1].end_s} s, the storyboard must last {want:g} s")
    if abs(sb.duration_s - want) > 1e-3:
        errs.append(f"duration_s is {sb.duration_s:g}, requested {want:g}")
    if not sb.hook.strip():
        errs.append("the hook is empty")
    if len(slots) > 1 and slots[0].role != "hook":
        errs.append(f"slot 0 must have role 'hook', has '{slots[0].role}'")
    if slots and slots[-1].role != "cta":
        errs.append(f"the last slot must be the call to action (role 'cta'), has '{slots[-1].role}'")
    if any(s.role == "cta" for s in slots[:-1]):
        errs.append("only the last slot may have role 'cta'")
    if not sb.cta.strip():
        errs.append("the CTA text is empty")
    if sb.disclosure != AI_LABEL:
        errs.append(f"disclosure must be '{AI_LABEL}'")

    texts = [sb.hook, sb.cta] + [t for s in slots for t in (s.narration, s.on_screen_text)]
    blob = " \n ".join(t for t in texts if t)
    low = blob.lower()
    if product.name.lower() not in low and product.brand.lower() not in low:
        errs.append(f"the product is never named ('{product.name}' or '{product.brand}' in narration/on-screen text/hook/CTA)")
    ptext = " ".join([product.name, product.brand, product.description, product.slogan, *product.selling_points,
                      *product.facts.keys(), *product.facts.values()])
    allowed_nums = _numbers(ptext)
    bad_nums = sorted(_numbers(blob) - allowed_nums)
    if bad_nums:
        errs.append(f"numbers not in the product's facts or selling points: {', '.join(bad_nums)}")
    for claim in product.forbidden_claims:
        if claim.lower() in low:
            errs.append(f"forbidden claim '{claim}'")
    plow = ptext.lower()
    for claim in _ABSOLUTE_CLAIMS:
        if claim in low and claim not in plow:
            errs.append(f"absolute claim '{claim.strip()}' is not backed by the product's facts")
    if history is not None:
        leaked = sorted(t for t in personal_tokens(history)
                        if re.search(rf"(?<![A-Za-z0-9_]){re.escape(t)}(?![A-Za-z0-9_])", blob)
                        and t.lower() not in plow)
        if leaked:
            errs.append(f"personal data from the user's history in the text: {', '.join(leaked)}")
    if host is not None:
        if not sb.starts_from_frame:
            errs.append("PCI: the storyboard must start from the integration frame (starts_from_frame)")
        if not sb.returns_to_frame:
            errs.append("PCI: the last slot must return to the integration frame (returns_to_frame)")
        if not (sb.host_connection or "").strip():
            errs.append("PCI: host_connection must state how the segment connects to the host's topic")
    if asset_ids is not None:
        unknown = sorted({a for s in slots for a in s.assets} - set(asset_ids))
        if unknown:
            errs.append(f"unknown asset ids: {', '.join(unknown)}")
    return errs
