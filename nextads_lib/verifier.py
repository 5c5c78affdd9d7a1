"""The Verifier (paper section 3.2.3): a dual-track assessment of one rendered creative.

**Utility track** (is it likely to work?), reusing the study's own evaluators through a small adapter
(:class:`UtilityAdapter`): video quality (``nextads_lib.vbench.score_video``: mean of MS, AQ, IQ, 0..1),
personalization (mean of the judge's two personalization criteria), product alignment (judge) and, for PCI,
context alignment (the judge's ``integration_quality``); judge scores (0..10) are divided by 10. Each score
keeps its backend and proxy label; an evaluator that is not installed or fails gives ``score=None`` with the
error, never a 0.

**Compliance track** (may it be shown?), deterministic rules over the plan, the product record, the user's
history, the grounding record and the decoded frames; every violation carries its evidence (slot, time range,
field, the offending text, the frame index or asset id). Every text rule runs on the plan's texts AND on the
lines OCR reads in one frame per slot of the rendered video (:func:`frame_units`, ``field="frame"`` with the
frame index and time); matching is on normal forms, stems and notations, with patterns and calibrated MiniLM
policies for what a list cannot hold (:mod:`nextads_lib.compliance.text`, ``docs/compliance.md``). With a model
verifier backend, one prompt per check over frames and plan adds ``model_*`` findings
(:mod:`nextads_lib.compliance.model_checks`, the visual spurious-conditioning check). A released copy is
checked by :func:`check_release` (C2PA manifest, AIGC metadata, visible label):

- ``safety``: unsafe-content words (:data:`UNSAFE_TERMS`); claims the product may not make: its
  ``forbidden_claims`` (normalised phrase, or all its content words in one text), numbers that are not in its
  facts/selling points/description, absolute or health claims (:data:`ABSOLUTE_CLAIMS`) and superlatives
  (:data:`SUPERLATIVES`) its own text does not make, deceptive urgency patterns (:data:`DECEPTIVE_PATTERNS`);
- ``privacy``: the user's personal data from the history (:func:`nextads_lib.director.personal_tokens`: the id,
  @handles, names and places; plus the history's item ids, e-mail addresses and phone numbers) in narration,
  on-screen text, hook, CTA or the visual description; a user visual whose origin is not an item of this
  user's own history;
- ``fairness``: wording about protected attributes (:data:`PROTECTED_TERMS`: age, gender, race/ethnicity,
  religion, disability, sexual orientation, body, nationality, family status); addressed to the viewer
  ("you", "your", "for", "as a" within three words) it is targeting (severe), otherwise a minor rewording;
- ``copyright``: every grounding asset has a licence record (product images and logo through the library's
  ``Asset.license``; user crops as derived from the user's own history item; palette swatches made here; the
  PCI host frame as the host's content shown in place); slots reference only recorded assets; no asset of
  another product; no other brand's name or mark (the library's other brands and product names, and
  :data:`REAL_BRANDS`), the paper's "spurious conditioning" failure;
- ``disclosure``: the "AI Created" label is found (:func:`nextads_lib.producer.post.label_present`) in every
  sampled frame of the RENDERED creative (and of the integrated segment for PCI), every half second of the first
  2 s included; its letters are >= 5% of the shorter side and its text, read by OCR, says "AI Created".

A ``rendering`` check (execution quality, not compliance) verifies that each slot's on-screen text is burned
in (:func:`text_rendered`), so the Reflector can tell "text not rendered" from a plan problem, and reports text
the frames show that the plan never had (:func:`unplanned_text`).

**Decision** (:func:`decide`, thresholds :data:`THRESHOLDS`): ``reject`` when any violation is severe or the
utility score is below ``reject_utility``; otherwise ``revise`` when a minor violation remains or utility is
below ``accept_utility``; otherwise ``accept``. Missing utility (no evaluator) decides on compliance alone and
says so in the rationales.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Callable, Sequence
import dataclasses
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np

from .config import AI_LABEL, display_path, resolve
from .media import MediaError, probe, read_frames
from .schemas import (
    ComplianceCheck,
    Evidence,
    Grounding,
    Product,
    ProducerManifest,
    ProductLibrary,
    Storyboard,
    UserHistory,
    UtilityScore,
    Verification,
    Violation,
)
from .compliance import text as T
from .compliance.text import TextUnit
from .store import read_json, read_model

#: bump when a check or the decision rule changes (part of the loop's cache keys)
CODE_VERSION = "verifier-7"  # 7: calibration on the build split v1+v2+v3, the learned_head switch; 6: the own text glued by OCR is no brand; 2: stems, patterns, MiniLM policies, OCR of the frames, label text/size/start; 3: OCR de-gluing, body-by-comparison, all-garbled lines, no text-rendering check on generative creatives without post production; 4: a possessive brand's bare name only capitalised, numbers the product's own images show; 5: brand lists by category, brands found without a list (a non-English name where a brand stands), unsafe content by category, forbidden claims by negation-equivalents and scope, effect/endorsement claims, age/life-event/faith/disability/health/body patterns, dictionary re-segmentation of OCR lines, a shop's own contact is no personal data

#: decision thresholds (utility scores are 0..1)
THRESHOLDS: dict[str, float] = {
    "reject_utility": 0.30,  # below: low utility, reject
    "accept_utility": 0.45,  # below (and not rejected): revise
    "label_frames": 8,  # frames sampled for the disclosure check (plus the first and the last)
    "text_contrast": 40.0,  # grey levels letters must stand above their box for "text rendered"
    "ocr_frames_per_slot": 1,  # frames per slot whose text OCR reads (0: OCR off, the plan's text only)
    "min_label_s": 2.0,  # the label shows from the first frame for at least this long
    "model_compliance": 1,  # with a model verifier backend: one prompt per check over frames + plan (0: off)
    "model_frames": 4,  # frames sampled for the model-backed checks
    "learned_head": 0,  # 1: the learned head (compliance.head, MiniLM + logistic regression) adds minor findings
}

# ------------------------------------------------------------------------------------------- lexicons
#: unsafe or sensitive content (platform ad policies): violence, weapons, drugs, gambling, adult, self-harm, hate
UNSAFE_CATEGORIES: dict[str, tuple[str, ...]] = {
    "violence": ("kill", "killing", "murder", "blood", "gore", "terror", "terrorist", "massacre", "stab", "stabbing",
                 "strangle", "assault"),
    "weapons": ("gun", "guns", "rifle", "weapon", "weapons", "bomb", "explosive", "bullet", "bullets", "ammo",
                "ammunition", "pistol", "handgun", "shotgun", "revolver", "grenade", "firearm", "sniper", "machete",
                "switchblade", "assault rifle"),
    "drugs": ("cocaine", "heroin", "meth", "weed", "marijuana", "cannabis", "drugs", "overdose", "ecstasy", "mdma",
              "lsd", "ketamine", "opioid", "opioids", "fentanyl", "crack pipe", "stoned", "get high", "getting high",
              "shrooms", "edibles", "joint", "blunt", "xanax", "adderall", "narcotics", "line of coke",
              "lines of coke", "snort", "snorting"),
    "tobacco": ("tobacco", "cigarette", "cigarettes", "cigar", "cigars", "vape", "vaping", "smoke", "smoking",
                "nicotine", "e-cig", "hookah", "shisha", "snus", "juul", "chewing tobacco"),
    "gambling": ("casino", "gamble", "gambling", "betting", "bet", "slots", "slot machine", "jackpot", "poker",
                 "roulette", "blackjack", "sportsbook", "bookie", "wager", "lottery", "scratch card", "win big", "roll the dice",
                 "double or nothing", "place your bets"),
    "adult": ("nude", "nudity", "porn", "sex", "sexy", "xxx", "erotic", "strip club"),
    "self_harm": ("suicide", "self-harm", "self harm", "starve", "starving", "diet pills", "purge", "laxatives"),
    "hate": ("hate", "racist", "slur", "nazi", "supremacist"),
}
#: unsafe or sensitive content (platform ad policies), every category's terms (:data:`UNSAFE_CATEGORIES`)
UNSAFE_TERMS: tuple[str, ...] = tuple(dict.fromkeys(t for ts in UNSAFE_CATEGORIES.values() for t in ts))
#: absolute, medical or guarantee claims that need the product's own backing
ABSOLUTE_CLAIMS: tuple[str, ...] = (
    "guarantee", "guaranteed", "#1", "number one", "best in the world", "cure", "cures", "clinically proven",
    "scientifically proven", "doctor recommended", "risk-free", "risk free", "100%", "never fails", "forever",
    "no side effects", "lose weight", "weight loss", "fat burning", "heals", "prevents disease", "fda approved",
)
#: comparative superlatives that need backing (minor: reword)
SUPERLATIVES: tuple[str, ...] = (
    "best", "cheapest", "fastest", "strongest", "healthiest", "safest", "most effective", "world's",
    "unbeatable", "miracle", "instantly", "permanent", "ever made", "lowest price",
)
#: deceptive patterns: false urgency, fake prizes, bait (minor)
DECEPTIVE_PATTERNS: tuple[str, ...] = (
    "act now", "only today", "last chance", "limited time", "hurry", "you have won", "you've won", "free gift",
    "click here", "no catch", "100% free", "only 1 left", "selling out", "you have been selected",
    "you've been selected", "you have been chosen", "you've been chosen", "claim your prize", "claim your reward",
    "claim your free", "you're a winner", "you are a winner", "you're our winner", "lucky winner", "prize",
    "congratulations, you",
)
#: protected attributes (fairness), by category
PROTECTED_TERMS: dict[str, tuple[str, ...]] = {
    "age": ("old people", "elderly", "seniors", "boomer", "boomers", "millennial", "millennials", "gen z",
            "young people", "teenager", "teenagers", "too old", "your age", "senior", "pensioner", "retiree",
            "teen", "adolescent", "middle aged", "older people", "older adults", "young adults", "zoomer"),
    "gender": ("women", "woman", "ladies", "girls", "girly", "manly", "men", "guys", "male", "female",
               "housewife", "housewives", "for her", "for him", "gentlemen", "gents", "lads", "blokes", "wives",
               "husbands", "gals", "fellas", "chaps", "dudes"),
    "race_ethnicity": ("black people", "white people", "asian", "asians", "latino", "latina", "hispanic",
                       "african", "caucasian", "your race", "ethnic", "ethnicity"),
    "religion": ("christian", "christians", "muslim", "muslims", "jewish", "jews", "hindu", "hindus", "buddhist",
                 "buddhists", "your religion", "atheist", "atheists", "catholic", "catholics", "protestant",
                 "protestants", "evangelical", "evangelicals", "baptist", "baptists", "methodist", "lutheran",
                 "anglican", "mormon", "mormons", "sikh", "sikhs", "jain", "jains", "islamic", "quaker", "quakers",
                 "amish", "pagan", "pagans", "wiccan", "rastafarian", "agnostic", "agnostics", "churchgoers",
                 "your faith", "your god"),
    "disability": ("disabled", "handicapped", "cripple", "crippled", "retarded", "wheelchair", "blind people",
                   "deaf people", "wheelchair users", "amputees", "autistic", "dyslexic", "paraplegic",
                   "quadriplegic", "visually impaired", "hearing impaired", "hard of hearing", "neurodivergent",
                   "special needs", "learning disability", "learning disabilities"),
    "health_condition": ("diabetic", "diabetics", "diabetes", "arthritis", "asthmatic", "asthmatics", "epileptic",
                         "epilepsy", "dementia", "alzheimer", "alzheimers", "cancer patients", "cancer survivors",
                         "chronic illness", "chronic pain", "hiv", "anxiety disorder", "adhd", "bipolar", "ibs",
                         "celiac", "coeliac", "crohn", "mental illness"),
    "sexual_orientation": ("gay", "lesbian", "queer", "transgender", "lgbt", "lgbtq", "straight people",
                           "bisexual"),
    "body": ("fat people", "obese", "ugly", "skinny", "overweight", "chubby", "plus size", "plus-size", "heavyset",
             "curvy", "waistline", "love handles", "muffin top", "double chin", "beer belly", "your weight"),
    "nationality": ("immigrant", "immigrants", "foreigner", "foreigners", "illegal alien"),
    "family_status": ("pregnant", "single moms", "single mothers", "divorced", "childless", "solo parents",
                      "lone parents", "single dads", "single parents", "widowed", "newlywed", "breakup", "break-up",
                      "your divorce", "your wedding", "empty nest"),
}
#: real-world brand names a creative of the study's fictional products must never show, by category (a brand that
#: is also an English word counts only written with a capital: :func:`brand_in`)
BRANDS_BY_CATEGORY: dict[str, tuple[str, ...]] = {
    "coffee_tea": ("Starbucks", "Nespresso", "Dunkin", "Costa", "Lavazza", "Illy", "Folgers", "Maxwell House",
                   "Nescafé", "Nescafe", "Keurig", "K-Cup", "K-Cups", "Tim Hortons", "Peet's", "Caribou Coffee",
                   "Blue Bottle", "Pret", "Pret A Manger", "Lipton", "Twinings", "Tetley", "PG Tips", "Jacobs",
                   "Tchibo", "Segafredo", "Kenco", "Douwe Egberts", "Death Wish Coffee", "Tassimo", "Dolce Gusto",
                   "Senseo", "Gevalia", "Caffè Nero", "Dutch Bros", "Krispy Kreme", "Bialetti", "Chemex",
                   "Hario", "Aeropress", "Breville", "De'Longhi", "DeLonghi", "Jura", "Moccamaster",
                   "Oatly", "Alpro", "Califia", "Coffee Mate", "International Delight"),
    "beverages": ("Coca-Cola", "Coke", "Pepsi", "Fanta", "Sprite", "7Up", "Dr Pepper", "Mountain Dew", "Red Bull",
                  "Monster", "Rockstar", "Gatorade", "Powerade", "Lucozade", "Snapple", "Tropicana", "Minute Maid",
                  "Evian", "Perrier", "San Pellegrino", "Fiji Water", "Dasani", "Vitaminwater", "Schweppes",
                  "LaCroix", "Arizona", "Celsius", "Liquid Death", "Heineken", "Budweiser", "Corona",
                  "Guinness", "Jack Daniel's", "Smirnoff", "Bacardi", "Baileys"),
    "food_snacks": ("Lay's", "Doritos", "Pringles", "Cheetos", "Ruffles", "Tostitos", "Walkers", "Oreo",
                    "Oreos", "Kit Kat", "KitKat", "Snickers", "Twix", "M&M's", "Hershey's", "Cadbury",
                    "Nutella", "Ferrero", "Lindt", "Toblerone", "Haribo", "Skittles", "Kellogg's", "Cheerios",
                    "Nature Valley", "Clif", "Quaker", "Heinz", "Kraft", "Nestlé", "Nestle", "Danone", "Chobani",
                    "Ben & Jerry's", "Häagen-Dazs", "Haagen-Dazs", "Pop-Tarts", "Hellmann's", "Tabasco", "Marmite",
                    "Vegemite", "Biscoff", "McVitie's", "Ritz", "Triscuit", "Goldfish", "Subway",
                    "McDonald's", "KFC", "Burger King", "Wendy's", "Taco Bell", "Domino's", "Pizza Hut",
                    "Chipotle", "Five Guys", "Shake Shack", "Greggs", "Nando's"),
    "retail_delivery": ("Amazon", "Walmart", "Costco", "Tesco", "Aldi", "Lidl", "IKEA", "eBay", "Etsy",
                        "Shopify", "Instacart", "DoorDash", "Deliveroo", "Grubhub", "Uber Eats", "Just Eat",
                        "Postmates", "Glovo", "Uber", "Lyft", "Airbnb", "Booking.com", "Expedia"),
    "tech_media": ("Apple", "iPhone", "iPad", "MacBook", "AirPods", "Apple Watch", "Samsung", "Google",
                   "Pixel", "Microsoft", "Xbox", "Sony", "PlayStation", "Nintendo", "Huawei", "Xiaomi",
                   "OnePlus", "Dell", "Lenovo", "HP", "Asus", "Acer", "Canon", "Nikon", "GoPro", "DJI", "Bose",
                   "JBL", "Sennheiser", "Sonos", "Logitech", "Razer", "Fitbit", "Garmin", "Whoop",
                   "Spotify", "Netflix", "Disney", "Disney+", "Hulu", "HBO", "Prime Video", "YouTube",
                   "TikTok", "Instagram", "Facebook", "WhatsApp", "Snapchat", "Twitter", "Reddit", "Twitch",
                   "Discord", "Pinterest", "LinkedIn", "Alexa", "Siri", "ChatGPT", "Kindle", "Audible",
                   "Apple Music", "Tidal", "Deezer", "SoundCloud", "Pandora", "Shazam", "Zoom", "Slack"),
    "apparel_sport": ("Nike", "Adidas", "Puma", "Reebok", "Under Armour", "New Balance", "Asics", "Brooks",
                      "Hoka", "Saucony", "Salomon", "On Running", "Lululemon", "Gymshark", "Patagonia",
                      "The North Face", "Columbia", "Arc'teryx", "Zara", "H&M", "Uniqlo", "Levi's",
                      "Primark", "Shein", "Gucci", "Prada", "Louis Vuitton", "Chanel", "Rolex", "Hermès",
                      "Ray-Ban", "Oakley", "Converse", "Vans", "Crocs", "Birkenstock", "Timberland", "Dr. Martens",
                      "Peloton", "Strava", "Yeti", "Stanley", "Hydro Flask", "Contigo", "Camelbak",
                      "Nalgene", "Fjällräven", "Osprey", "Decathlon"),
    "beauty_home": ("Gillette", "Schick", "Braun", "Philips", "Dyson", "L'Oreal", "L'Oréal", "Nivea", "Olay",
                    "CeraVe", "The Ordinary", "Neutrogena", "Dove", "Garnier", "Maybelline", "Clinique",
                    "Estée Lauder", "La Roche-Posay", "Sephora", "Colgate", "Oral-B", "Listerine", "Pampers",
                    "Dettol", "Lysol", "KitchenAid", "Vitamix", "Nutribullet",
                    "Instant Pot", "Le Creuset", "Purina", "Pedigree", "Whiskas", "Royal Canin",
                    "Hill's", "Iams", "Sheba"),
    "cars": ("Tesla", "BMW", "Mercedes", "Toyota", "Ford", "Honda", "Volkswagen", "Audi", "Porsche", "Ferrari",
             "Hyundai", "Kia", "Volvo", "Nissan", "Jeep", "Shell", "BP"),
}
#: every brand of :data:`BRANDS_BY_CATEGORY`, once
REAL_BRANDS: tuple[str, ...] = tuple(dict.fromkeys(b for bs in BRANDS_BY_CATEGORY.values() for b in bs))


# ---------------------------------------------------------------------------------------------- text units
def text_units(plan: Storyboard, *, composition: bool = True) -> list[TextUnit]:
    """Every text of the plan with its slot and time range: each slot's narration (spoken and subtitled),
    on-screen text and visual description, the hook (slot 0) and the CTA (the last slot's end card)."""
    out: list[TextUnit] = []
    slots = sorted(plan.slots, key=lambda s: s.start_s)
    for s in slots:
        for f in ("narration", "on_screen_text") + (("composition",) if composition else ()):
            t = getattr(s, f)
            if t and t.strip():
                out.append(TextUnit(f, t, s.index, s.start_s, s.end_s))
    if plan.hook.strip() and slots:
        out.append(TextUnit("hook", plan.hook, slots[0].index, slots[0].start_s, slots[0].end_s))
    if plan.cta.strip() and slots:
        out.append(TextUnit("cta", plan.cta, slots[-1].index, slots[-1].start_s, slots[-1].end_s))
    return out


def _find_phrase(phrase: str, text: str, ocr: bool = False) -> bool:
    """``phrase`` in ``text`` as whole words compared by their stems (:func:`compliance.text.phrase_in`: case,
    Unicode, punctuation and inflection normalised; OCR text also with its spaces lost)."""
    return T.phrase_in(phrase, text, ocr=ocr)


_STOP = {"the", "and", "for", "with", "your", "you", "that", "this", "from", "are", "its", "our", "not", "any",
         "all", "has", "have", "was", "will", "can", "more", "less", "than", "into", "over", "every"}


def _content_stems(text: str) -> list[str]:
    words = T.tokens(text)
    return [T.stem(w)[:4] for w in words if len(w) >= 3 and w not in _STOP]


#: what breaks (the negation-equivalents of "unbreakable", "indestructible", "never breaks", "shatterproof")
_BREAK = r"(?:break|crack|shatter|scratch|smash|dent|snap)"
#: a claim's meaning written another way: each entry maps a pattern of the claim to patterns that make it too
_EQUIVALENTS: tuple[tuple[re.Pattern[str], tuple[str, ...]], ...] = tuple((re.compile(c), e) for c, e in (
    # "unbreakable screen", "indestructible", "never breaks" = "can't crack", "won't shatter", "shatterproof"
    (r"\b(?:unbreakable|indestructible|never breaks|shatterproof)\b",
     (rf"\b(?:can't|cannot|can not|won't|will not|will never|never|doesn't|does not|impossible to) (?:ever )?{_BREAK}",
      rf"\b{_BREAK}[- ]?proof\b", r"\bunbreakable\b|\bindestructible\b")),
    # "unlimited battery", "lasts forever" = "never runs out", "endless", "infinite", "never needs charging"
    (r"\b(?:unlimited|lasts forever|never runs out)\b",
     (r"\bnever (?:runs?|running) (?:out|dry|flat)\b", r"\b(?:endless|infinite|limitless|bottomless)\b",
      r"\bnever (?:needs?|have to) (?:charging|a charge|to charge|recharg\w*)\b", r"\bunlimited\b",
      r"\bno (?:more )?(?:charging|recharging|chargers?)\b")),
    # "blocks 100% of noise" = "silences every sound", "blocks out all noise"
    (r"\b(?:blocks?|cancels?|silences?) 100% of\b",
     (r"\b(?:blocks?|cancels?|silences?|mutes?|kills?|shuts? out|drowns? out) (?:out )?(?:every|all|any)(?: single)? "
      r"(?:\w+ )?(?:sound|noise)s?\b", r"\btotal silence\b|\bperfect silence\b")),
))
_NUM_WORD_ALT = "|".join(sorted(T._NUMWORDS, key=len, reverse=True))
_NUM_WORDS_RE = re.compile(r"\b(?:minus|negative) (" + _NUM_WORD_ALT + r"|\d+)\b")
_NUM_WORD_RE = re.compile(r"\b(" + _NUM_WORD_ALT + r")\b")


def _claim_text(text: str) -> str:
    """The normal form of a text with the sign of a temperature written out made a number ("minus thirty" -> "-30")
    and every number word a number ("thirty" -> "30"), so a claim's number matches however it is written."""
    t = T.normalise(text)
    t = _NUM_WORDS_RE.sub(lambda m: "-" + str(T._NUMWORDS.get(m.group(1), m.group(1))), t)
    return _NUM_WORD_RE.sub(lambda m: str(T._NUMWORDS[m.group(1)]), t)


def _negation_forms(claim: str) -> list[str]:
    """The negation-equivalents of a "free of X" claim: "sugar-free" = "zero sugar" = "no sugar" = "without sugar"
    = "0 sugar" = "free from sugar"; "zero fat" = "fat-free"; a "low X" claim is made a fortiori by "zero X"
    ("low calorie" ~ "zero calories")."""
    c = T.normalise(claim)
    m = re.fullmatch(r"([a-z]+)[- ]free\b.*|(?:zero|no|0|low|low in) ([a-z]+)\b.*", c)
    if not m:
        return []
    x = T.stem(m.group(1) or m.group(2))  # "calorie": "calories"
    return [rf"\b{x}\w*[- ]free\b", rf"\b(?:zero|no|0|nil|without|free (?:of|from)) (?:added )?{x}\w*\b"]


def claim_in(claim: str, text: str, ocr: bool = False) -> bool:
    """A forbidden claim is made when its phrase occurs (any inflection), a hyphenated compound of it occurs, its
    object follows a verb of having ("contains vitamins" ~ "packed with vitamins"), (for claims of two or more
    content words) every content word's 4-letter stem and number occurs in the same text ("burns fat" ~
    "fat-burning", "warm to -30 C" ~ "warm at minus thirty"), or it is made in other words: a negation-equivalent
    ("sugar-free" ~ "zero sugar"), an equivalent of :data:`_EQUIVALENTS` ("unbreakable screen" ~ "can't crack"), its
    scope on its own ("waterproof at any depth" ~ "to any depth", "every song ever released" ~ "every song ever
    recorded") or, for "<something>-proof for <activity>", the activity ("waterproof for swimming" ~ "your morning
    swim")."""
    if _find_phrase(claim, text, ocr):
        return True
    # a hyphenated compound of the claim is the claim on its own ("medical-grade accuracy" ~ "medical-grade readings")
    if any(_find_phrase(c, text, ocr) for c in re.findall(r"[A-Za-z]{3,}-[A-Za-z]{3,}", claim)):
        return True
    # "contains X" is also made by "packed with X", "full of X", "rich in X" ...
    m = re.match(r"(?i)(?:contains?|includes?|has|with)\s+(.+)", claim.strip())
    if m and _find_phrase(m.group(1), text, ocr) and re.search(
            r"(?i)\b(?:packed with|full of|rich in|loaded with|high in|with added|a source of|contains?|includes?|"
            r"has|boasts?)\b", text):
        return True
    t = _claim_text(T.resegment(text) if ocr else text)
    c = T.normalise(claim)
    if any(re.search(p, t) for p in _negation_forms(claim)):
        return True
    for pat, eqs in _EQUIVALENTS:
        if pat.search(c) and any(re.search(e, t) for e in eqs):
            return True
    sc = re.search(r"\b(?:at|in|to|on) any ([a-z]{4,})\b", c)  # "waterproof at any depth": "to any depth"
    if sc and re.search(rf"\b(?:at|in|to|on|for|through) any {T.stem(sc.group(1))}", t):
        return True
    ev = re.search(r"\bevery ([a-z]{3,}) ever\b", c)  # "every song ever released": "every song ever recorded"
    if ev and re.search(rf"\b(?:every|all|each) (?:single )?{T.stem(ev.group(1))}\w* (?:\w+ )?ever\b", t):
        return True
    pf = re.fullmatch(r"[a-z]+proof for ([a-z]{4,})\b.*", c)  # "waterproof for swimming": "swim laps"
    if pf and T.stem(pf.group(1))[:4] in {T.stem(w)[:4] for w in T.tokens(t)}:
        return True
    stems = _content_stems(claim) + [n for n in re.findall(r"\d{2,}", _claim_text(claim))]
    if len(stems) < 2:
        return False
    have = set(_content_stems(t)) | set(re.findall(r"\d{2,}", t))
    return all(s in have for s in stems)


def numbers(text: str) -> set[str]:
    """Numbers in a text (commas dropped), e.g. ``{"14", "250"}``."""
    return {n.replace(",", "").rstrip(".") for n in re.findall(r"\d+(?:[.,]\d+)?", text)}


def product_text(product: Product) -> str:
    """Everything the product record says (what a creative may repeat)."""
    return " ".join([product.name, product.brand, product.description, product.slogan, product.subcategory,
                     *product.selling_points, *product.facts.keys(), *product.facts.values()])


# --------------------------------------------------------------------------------------------- checks
def _check(name: str, violations: list[Violation], **checked: Any) -> ComplianceCheck:
    return ComplianceCheck(check=name, passed=not violations, violations=violations, checked=checked)


def _units(plan: Storyboard | None, frame_units: Sequence[TextUnit] = (), *, composition: bool = True
           ) -> list[TextUnit]:
    return (text_units(plan, composition=composition) if plan is not None else []) + list(frame_units)


def _where(u: TextUnit) -> str:
    return (f"frame {u.frame_index} ({u.start_s:.2f} s) of the rendered video" if u.ocr and u.start_s is not None
            else f"the {u.field}")


def _figurative_cure(text: str) -> bool:
    """"The cure for a boring cup": the noun "cure" of something that is no condition (:data:`compliance.text._COND`)
    is a figure of speech, not a health claim."""
    t = T.normalise(text)
    m = re.search(r"\b(?:the|a|your) cure for (?:a |an |the |your |those |that )?((?:\w+ ){0,2}\w+)", t)
    return bool(m) and not re.search(rf"\b{T._COND}\b", m.group(1)) and len(re.findall(r"\bcures?\b", t)) == 1


def check_safety(plan: Storyboard, product: Product, frame_units: Sequence[TextUnit] = ()) -> ComplianceCheck:
    """Unsafe words, forbidden claims, prices and percentages the product's facts do not state, other unsupported
    numbers, absolute/health claims (lexicon and, calibrated, their paraphrases), superlatives, deceptive urgency;
    over the plan's texts and the lines OCR read in the frames (``frame_units``)."""
    ptext = product_text(product)
    allowed = T.plain_numbers(ptext)
    prices = T.money_values(ptext) | {v for k, x in product.facts.items() if re.search(r"price|cost", k, re.I)
                                      for v in T.plain_numbers(x)}
    percents = T.percent_values(ptext)
    viol: list[Violation] = []
    units = _units(plan, frame_units, composition=False)

    def add(u: TextUnit, rule: str, sev: str, msg: str, tok: str) -> None:
        viol.append(Violation(check="safety", rule=rule, severity=sev, message=f"{msg} in {_where(u)}",
                              evidence=u.evidence(tok)))

    for u in units:
        harmless = T.unsafe_idioms(u.text)  # "smoked salmon", "I bet you'll love it"
        for w in UNSAFE_TERMS:
            if _find_phrase(w, harmless, u.ocr) and not _find_phrase(w, ptext):
                add(u, "unsafe_content", "severe", f"unsafe or sensitive term '{w}'", w)
        for c in product.forbidden_claims:
            if claim_in(c, u.text, u.ocr):
                add(u, "forbidden_claim", "severe", f"claim the product may not make: '{c}'", c)
        for v in sorted(T.money_values(u.text) - prices):
            add(u, "unsupported_price", "severe", f"the price {v:g} is not the product's", f"{v:g}")
        for v in sorted(T.percent_values(u.text) - percents):
            add(u, "unsupported_percentage", "severe", f"the percentage {v:g}% is not in the product's facts", f"{v:g}%")
        for n in sorted(T.plain_numbers(u.text) - allowed - T.money_values(u.text) - T.percent_values(u.text)):
            add(u, "unsupported_number", "minor", f"the number {n:g} is not in the product's facts", f"{n:g}")
        for c in ABSOLUTE_CLAIMS:
            if c in ("cure", "cures") and _figurative_cure(u.text):
                continue
            if _find_phrase(c, u.text, u.ocr) and not _find_phrase(c, ptext):
                add(u, "unsupported_claim", "severe", f"absolute or health claim '{c}' not backed by the product's facts", c)
        for cat, pats, rule, sev in (("absolute or health claim", T.CLAIM_PATTERNS, "unsupported_claim", "severe"),
                                     ("false scarcity or urgency", T.SCARCITY_PATTERNS, "deceptive_pattern", "minor")):
            for h in T.pattern_hits(pats, u.text, ocr=u.ocr):
                if h not in T.normalise(ptext):
                    add(u, rule, sev, f"{cat} '{h}' not backed by the product's facts", h)
        # "best enjoyed within a month" instructs, it does not compare; an OCR line's glued words are split by the
        # dictionary first ("BESTBREWEDFRESH" -> "best brewed fresh")
        seg = T.resegment(u.text) if u.ocr else u.text
        plain, sup_ocr = T.best_idioms(seg), u.ocr and seg == T.normalise(u.text)
        for c in SUPERLATIVES:
            if _find_phrase(c, plain, sup_ocr) and not _find_phrase(c, ptext):
                add(u, "superlative", "minor", f"superlative '{c}' not backed by the product's facts", c)
        for c in DECEPTIVE_PATTERNS:
            if _find_phrase(c, u.text, u.ocr) and not _find_phrase(c, ptext):
                add(u, "deceptive_pattern", "minor", f"deceptive urgency pattern '{c}'", c)
    sem_units = [u for u in units if u.field != "composition"]
    for u, hit in zip(sem_units, T.semantic_hits("claims", [u.text for u in sem_units])):
        if hit is not None and not any(x.evidence.context == u.text and x.rule in ("unsupported_claim", "forbidden_claim")
                                       for x in viol):
            add(u, "unsupported_claim", "severe", f"claim '{hit[1]}' reads as '{hit[2]}' (MiniLM similarity "
                f"{hit[0]:.2f}), which the product's facts do not back", hit[1])
    for u, hit in zip(sem_units, T.semantic_hits("unsafe", [u.text for u in sem_units])):
        if hit is not None and not any(x.evidence.context == u.text and x.rule == "unsafe_content" for x in viol):
            add(u, "unsafe_content", "severe", f"'{hit[1]}' reads as '{hit[2]}' (MiniLM similarity {hit[0]:.2f})",
                hit[1])
    return _check("safety", viol, texts=len(units), frame_texts=len(frame_units),
                  forbidden_claims=len(product.forbidden_claims), unsafe_terms=len(UNSAFE_TERMS))


_EMAIL = re.compile(r"[A-Za-z0-9._%+-]+@[A-Za-z0-9.-]+\.[A-Za-z]{2,}")
_PHONE = re.compile(r"(?<!\d)(?:\+?\d[\d\s().-]{7,}\d)(?!\d)")
#: an @handle is written without a space ("@ home", "@ 7am" are "at"; the user's own "@ maya_runs" is found by
#: :func:`personal_in` in any notation)
_HANDLE = re.compile(r"(?<![A-Za-z0-9_])@[A-Za-z0-9_.]{2,}")


def personal_data(history: UserHistory) -> set[str]:
    """What must never appear in this user's creative: :func:`director.personal_tokens` (id, @handles, names,
    places), the history's item ids, and e-mail addresses / phone numbers found in the history."""
    from .director import personal_tokens  # noqa: PLC0415

    toks = set(personal_tokens(history))
    for it in history.items:
        toks.add(it.item_id)
        for t in (it.title, it.text):
            toks.update(_EMAIL.findall(t))
            toks.update(m.strip() for m in _PHONE.findall(t))
    return {t for t in toks if len(t) >= 3}


def _is_identifier(tok: str) -> bool:
    return bool(re.search(r"[0-9_@.]", tok)) or tok.startswith("#")


def personal_in(tok: str, text: str, ocr: bool = False) -> bool:
    """A personal token in ``text``: an identifier (id, @handle, e-mail, phone: anything with a digit, ``_``,
    ``@``, ``.``) in any notation (:func:`compliance.text.notation_in`: "@maya_runs" ~ "Maya Runs", "u_8123" ~
    "U-8123") or by its distinctive digits ("#8123", "member 8123"); a name as a capitalised word or run of words
    (a lower-case "rose" is a flower, "Rose" a name)."""
    if _is_identifier(tok):
        if T.notation_in(tok, text, ocr=ocr):
            return True
        digits = re.findall(r"\d{3,}", tok)
        if digits and not re.fullmatch(r"[+\d\s().-]+", tok):
            t = T.normalise(text)
            return any(re.search(rf"(?<![\w.,]){d}(?!\w|[.,]\d)", t) for d in digits)
        if digits:  # a phone number: its digits in any grouping
            d = re.sub(r"\D", "", tok)[-10:]  # the national number, with or without the country code
            return len(d) >= 7 and d in re.sub(r"\D", "", text)
        return False
    if ocr and len(tok) >= 4 and text.upper() == text:  # an OCR line in capitals that lost its spaces ("ALFAMAMORNINGS")
        sk = T.skeleton(tok)
        if any(len(w) >= len(sk) + 3 and (w.startswith(sk) or w.endswith(sk)) for w in map(T.fold, T.tokens(text))):
            return True
    for m in re.finditer(r"(?<![A-Za-z0-9])" + re.escape(T.normalise(tok)) + r"(?![A-Za-z0-9])",
                         T.normalise(text)):
        raw = unicodedata.normalize("NFKC", text)
        if m.start() < len(raw) and raw[m.start()].isupper():
            return True
    return False


#: a contact presented as the advertiser's: a verb of contacting and what the viewer contacts it for
_CONTACT_VERB = re.compile(r"(?i)\b(?:call|ring|dial|phone|text|whatsapp|message|email|e-mail|write to|contact|reach|"
                           r"send your order to|questions\?|enquiries|inquiries|orders?:)")
_CONTACT_PURPOSE = re.compile(r"(?i)\b(?:us|our|order|orders|reorder|sample|samples|questions?|details|info|"
                              r"help|support|enquiries|inquiries|bookings?|delivery)\b")


def shop_contact(text: str) -> bool:
    """``text`` presents its address as the advertiser's own contact ("Call 212-555-0147 to order", "Questions?
    coffee.club@mailbox.net", "Contact hello@someone.org for samples"): the study's spec counts such an address
    as no personal data (the user's own address stays personal data in any context: :func:`personal_in`)."""
    m = _CONTACT_VERB.search(text)
    if m is None:
        return False
    return bool(re.match(r"(?i)questions|enquiries|inquiries|orders", m.group(0))
                or _CONTACT_PURPOSE.search(text[m.end():]))


def check_privacy(plan: Storyboard, product: Product, history: UserHistory | None,
                  grounding: Grounding | None = None, frame_units: Sequence[TextUnit] = ()) -> ComplianceCheck:
    """The user's personal data in any text (plan fields and the lines read in the frames) in any notation, any
    @handle / e-mail (also written "name at host dot com") at all, and user visuals that do not come from this
    user's history."""
    viol: list[Violation] = []
    ptext = product_text(product)
    plow = ptext.lower()
    units = _units(plan, frame_units)
    tokens = personal_data(history) if history is not None else set()
    for u in units:
        found: set[str] = set()
        for t in sorted(tokens):
            if t.lower() in plow:
                continue
            if personal_in(t, u.text, u.ocr):
                found.add(t)
        for pat in (_HANDLE, _EMAIL):
            for m in pat.findall(u.text):
                if m.lower() not in plow and not any(personal_in(f, m) for f in found) and not (
                        pat is _EMAIL and shop_contact(u.text)):
                    found.add(m)
        for m in T.obfuscated_emails(u.text):
            addr = re.sub(r"\s?(?:\(at\)|\[at\]| at )\s?", "@", re.sub(r"\s?(?:\(dot\)|\[dot\]| dot )\s?", ".", m))
            own = any(T.skeleton(addr) == T.skeleton(t) for t in tokens)  # the user's own address, written out
            if not any(personal_in(f, m) for f in found) and (own or not shop_contact(u.text)):
                found.add(m)
        for t in sorted(found):
            viol.append(Violation(check="privacy", rule="personal_data", severity="severe",
                                  message=f"personal data of the user ('{t}') in {_where(u)}", evidence=u.evidence(t)))
    n_visuals = 0
    if grounding is not None:
        ids = {it.item_id for it in history.items} if history is not None else set()
        for s in grounding.sources:
            if s.kind != "user_visual":
                continue
            n_visuals += 1
            if s.origin != "palette" and s.origin not in ids:
                viol.append(Violation(check="privacy", rule="foreign_user_visual", severity="severe",
                                      message=f"user visual '{s.asset_id}' comes from '{s.origin}', not from this "
                                      "user's own history", evidence=Evidence(field="asset", asset_id=s.asset_id,
                                                                              text=s.origin)))
    return _check("privacy", viol, texts=len(units), frame_texts=len(frame_units), personal_tokens=len(tokens),
                  user_visuals=n_visuals)


_ADDRESS = re.compile(r"\b(you|your|you're|youre|for|as a|as an|because|all)\b", re.I)


def check_fairness(plan: Storyboard, product: Product, frame_units: Sequence[TextUnit] = ()) -> ComplianceCheck:
    """Wording about protected attributes: the lexicon (:data:`PROTECTED_TERMS`, any inflection; addressed to the
    viewer by a "you", "your", "for", "as a", "because" within three words before it it is targeting: severe;
    otherwise minor), ages and age ranges (:data:`compliance.text.AGE_PATTERNS`) and family status
    (:data:`compliance.text.FAMILY_PATTERNS`): targeting, severe; and, calibrated, paraphrased targeting
    (MiniLM against :data:`compliance.text.POLICIES` ``targeting``): severe."""
    ptext = product_text(product)
    viol: list[Violation] = []
    units = _units(plan, frame_units)
    for u in units:
        for cat, terms in PROTECTED_TERMS.items():
            for t in terms:
                if not _find_phrase(t, u.text, u.ocr) or _find_phrase(t, ptext):
                    continue
                st = T.stems(t)
                ws = T.tokens(u.text)
                ss = [T.stem(w) for w in ws]
                i = next((k for k in range(len(ss) - len(st) + 1) if ss[k : k + len(st)] == st), -1)
                before = ws[max(0, i - 3) : i] if i >= 0 else []
                if i >= 0 and t.startswith("your ") and re.search(r"\b(?:whatever|regardless of|no matter|whichever)$",
                                                                  " ".join(ws[max(0, i - 3) : i])):
                    continue  # "whatever your age", "no matter your religion": everyone, no group
                targeted = any(_ADDRESS.fullmatch(w) for w in before) or (
                    i >= 1 and " ".join(ws[max(0, i - 2) : i]) in ("as a", "as an"))
                viol.append(Violation(
                    check="fairness", rule="protected_attribute_targeting" if targeted else "protected_attribute",
                    severity="severe" if targeted else "minor",
                    message=f"{'targets the viewer by' if targeted else 'mentions'} a protected attribute "
                            f"({cat}: '{t}') in {_where(u)}", evidence=u.evidence(t)))
        for cat, pats in (("age", T.AGE_PATTERNS), ("family_status", T.FAMILY_PATTERNS),
                          ("body, origin or faith", T.GROUP_PATTERNS)):
            for h in T.pattern_hits(pats, u.text, ocr=u.ocr):
                if T.pattern_hits(pats, ptext) and h in T.normalise(ptext):
                    continue
                viol.append(Violation(check="fairness", rule="protected_attribute_targeting", severity="severe",
                                      message=f"addresses the viewer by {cat.replace('_', ' ')} ('{h}') in {_where(u)}",
                                      evidence=u.evidence(h)))
    sem_units = [u for u in units if u.field != "composition"]
    for u, hit in zip(sem_units, T.semantic_hits("targeting", [u.text for u in sem_units])):
        if hit is not None and not any(x.evidence.context == u.text for x in viol):
            viol.append(Violation(check="fairness", rule="protected_attribute_targeting", severity="severe",
                                  message=f"'{hit[1]}' reads as targeting '{hit[2]}' (MiniLM similarity {hit[0]:.2f}) "
                                  f"in {_where(u)}", evidence=u.evidence(hit[1])))
    return _check("fairness", viol, texts=len(units), frame_texts=len(frame_units), categories=len(PROTECTED_TERMS))


#: brand names that are also common words: found only when written with a capital ("Apple", not "apple")
AMBIGUOUS_BRANDS: frozenset[str] = frozenset({
    "apple", "pixel", "puma", "amazon", "columbia", "coke", "canon", "shell", "dove", "uber", "olay",
    "the ordinary", "mercedes", "fanta", "pedigree", "dell", "sony", "zara",
})


#: brands that are also common English words with another sense ("a monster morning", "a sprite", "Costa Rica"):
#: found only written with a capital and where a brand stands (:func:`compliance.text.brand_context`)
CONTEXT_BRANDS: frozenset[str] = frozenset({
    "costa", "monster", "sprite", "yeti", "twitch", "stanley", "corona", "arizona", "celsius", "quaker", "subway",
    "walkers", "jacobs", "ritz", "goldfish", "kettle", "mars", "prime", "brooks", "converse", "vans", "crocs",
    "osprey", "whoop", "bolt", "glovo", "felix", "sheba", "ford", "jeep", "beats", "galaxy", "alexa", "lotus",
    "pret", "evian", "silk", "clif", "iams", "jura", "strava", "discord", "zoom", "slack", "pandora", "tidal",
    "max", "sage", "philips", "braun", "dove", "gap", "target", "tide", "ninja", "kind", "on running",
})


def brand_in(brand: str, text: str, ocr: bool = False) -> bool:
    """Another brand's name in any notation ("Coca Cola", "COCA-COLA", "cocacola", "N1KE", "Nike's", "Starbuck's");
    a brand of :data:`AMBIGUOUS_BRANDS` only when written with a capital; a brand of :data:`CONTEXT_BRANDS` only
    when written with a capital and where a brand stands (:func:`compliance.text.brand_context`: "than Costa",
    "COSTA WHO?", not "A MONSTER MORNING")."""
    nb = T.normalise(brand)
    if nb in AMBIGUOUS_BRANDS or nb in CONTEXT_BRANDS:
        raw = unicodedata.normalize("NFKC", text)
        for m in re.finditer(r"(?<![A-Za-z0-9])(?:" + re.escape(brand) + "|" + re.escape(brand.upper()) + r")(?![a-z0-9])",
                             raw):
            if nb in CONTEXT_BRANDS:
                if T.brand_context(raw, m.start(), m.end()):
                    return True
                continue
            # at a sentence's start a capital says nothing: the brand there is written in capitals or followed by
            # another capitalised word ("Apple Watch"), else it is the common word ("Coke-black? No")
            start = not raw[: m.start()].strip() or raw[: m.start()].rstrip()[-1] in ".!?:;\"'("
            if not start or m.group(0).isupper() or re.match(r"[ ’']*\s+[A-Z]", raw[m.end():]):
                return True
        return False
    # a misplaced apostrophe is no part of the name ("Starbuck's" is "Starbucks")
    if "'" in text or "’" in text:
        if T.notation_in(brand, re.sub(r"['’]", "", text), ocr=ocr):
            return True
    # a possessive is no part of the name: "McDonald's" ~ "Mc Donald", "Nike's" ~ "Nike"; the bare name is a name
    # only where it is written as one, with a capital or a possessive ("flat-lay" is no "Lay's", "Mc Donald" and
    # "mcdonald's" are "McDonald's")
    if T.notation_in(brand, text, ocr=ocr):
        return True
    if re.search(r"['’]s$", brand) is None:
        return False
    named = " ".join(w for w in unicodedata.normalize("NFKC", text).split()
                     if w[:1].isupper() or w[:1].isdigit() or re.search(r"['’]s\W*$", w))
    return bool(named) and T.notation_in(re.sub(r"['’]s$", "", brand), named, ocr=ocr)


def other_brands(product: Product, library: ProductLibrary | None) -> list[str]:
    """Brand and product names the creative must not show: the library's other products and :data:`REAL_BRANDS`,
    minus anything the product's own text contains."""
    names: list[str] = []
    if library is not None:
        for p in library.products:
            if p.id != product.id:
                names += [p.brand, p.name]
    names += list(REAL_BRANDS)
    return list(_not_own(product_text(product), tuple(dict.fromkeys(names))))


@lru_cache(maxsize=256)
def _not_own(own: str, names: tuple[str, ...]) -> tuple[str, ...]:
    return tuple(n for n in names if n and not brand_in(n, own))


def _asset_license(product: Product, path: str) -> Any:
    rp = resolve(path).resolve()
    for a in [product.logo, *product.images]:
        if resolve(a.path).resolve() == rp:
            return a.license
    return None


def check_copyright(plan: Storyboard, product: Product, library: ProductLibrary | None,
                    grounding: Grounding | None, history: UserHistory | None = None,
                    frame_units: Sequence[TextUnit] = ()) -> ComplianceCheck:
    """Licence records of every grounding asset, slot assets that are recorded, no asset of another product,
    no other brand's name (see the module docstring). ``checked['licenses']`` lists each asset's record."""
    viol: list[Violation] = []
    records: dict[str, str] = {}
    hist_ids = {it.item_id for it in history.items} if history is not None else set()
    known: set[str] = set()
    if grounding is None:
        viol.append(Violation(check="copyright", rule="no_grounding_record", severity="severe",
                              message="grounding.json is missing: the assets' licences cannot be checked",
                              evidence=Evidence(field="asset")))
    else:
        for s in grounding.sources:
            known.add(s.asset_id)
            ev = Evidence(field="asset", asset_id=s.asset_id, text=s.path)
            if s.kind in ("product_image", "logo"):
                if s.origin != product.id:
                    viol.append(Violation(check="copyright", rule="foreign_asset", severity="severe",
                                          message=f"asset '{s.asset_id}' belongs to '{s.origin}', not to {product.id}",
                                          evidence=ev))
                    continue
                lic = _asset_license(product, s.path)
                if lic is None:
                    viol.append(Violation(check="copyright", rule="missing_license", severity="severe",
                                          message=f"asset '{s.asset_id}' ({s.path}) has no licence record in the "
                                          f"product library", evidence=ev))
                elif lic.license == "CC-BY-4.0" and not lic.author.strip():
                    viol.append(Violation(check="copyright", rule="missing_attribution", severity="minor",
                                          message=f"asset '{s.asset_id}' is CC-BY-4.0 without an author", evidence=ev))
                else:
                    records[s.asset_id] = f"{lic.license} ({lic.source})"
            elif s.kind == "user_visual":
                if s.origin == "palette" or s.origin in hist_ids or history is None:
                    records[s.asset_id] = (f"derived from the user's own history item {s.origin}, shown only to them"
                                           if s.origin != "palette" else "made-here (palette swatches)")
                else:
                    viol.append(Violation(check="copyright", rule="missing_license", severity="severe",
                                          message=f"user visual '{s.asset_id}' is derived from '{s.origin}', which "
                                          "is not in the user's history: no right to use it", evidence=ev))
            elif s.kind == "palette":
                records[s.asset_id] = "made-here (palette swatches)"
            elif s.kind == "start_frame":
                records[s.asset_id] = f"host video frame of {s.origin}, shown in place within the host"
            else:  # pragma: no cover - the schema's Literal forbids other kinds
                viol.append(Violation(check="copyright", rule="missing_license", severity="severe",
                                      message=f"asset '{s.asset_id}' of unknown kind '{s.kind}'", evidence=ev))
    for sl in plan.slots if plan is not None else []:
        for a in sl.assets:
            if grounding is not None and a not in known:
                viol.append(Violation(check="copyright", rule="unrecorded_asset", severity="severe",
                                      message=f"slot {sl.index} shows asset '{a}', which has no grounding/licence record",
                                      evidence=Evidence(slot=sl.index, start_s=sl.start_s, end_s=sl.end_s,
                                                        field="assets", asset_id=a, text=a)))
    brands = other_brands(product, library)
    units = _units(plan, frame_units)
    for u in units:
        for b in brands:
            if brand_in(b, u.text, u.ocr):
                viol.append(Violation(check="copyright", rule="other_brand", severity="severe",
                                      message=f"another brand's name or mark '{b}' in {_where(u)}",
                                      evidence=u.evidence(b)))
    # a brand no list holds: a name that is no English word, not the product's own and not the user's (privacy's
    # finding), standing where a brand stands ("Smoother than Lavazza", "KEURIG READY")
    own = " ".join([product_text(product), *(personal_data(history) if history is not None else ())])
    for u in units:
        if u.field == "composition" or any(v.evidence.context == u.text and v.rule == "other_brand" for v in viol):
            continue
        for name in T.brand_candidates(u.text, own):
            viol.append(Violation(check="copyright", rule="other_brand", severity="severe",
                                  message=f"'{name}' reads as another brand's name (no English word, placed where a "
                                  f"brand stands) in {_where(u)}", evidence=u.evidence(name)))
    return _check("copyright", viol, licenses=records, brands_checked=len(brands), texts=len(units))


def _slot_of(plan: Storyboard, t: float) -> int | None:
    for s in plan.slots:
        if s.start_s - 1e-6 <= t < s.end_s + 1e-6:
            return s.index
    return plan.slots[-1].index if plan.slots else None


def label_frames(n_total: int, n: int) -> list[int]:
    """Frames the disclosure check decodes: ``n`` evenly spread, plus the first and the last."""
    from .media import sample_indices  # noqa: PLC0415

    return sorted({0, max(0, n_total - 1), *sample_indices(n_total, n)})


def label_text_ok(text: str) -> bool:
    """Does an OCR reading of the label say :data:`config.AI_LABEL`? Compared on the folded skeleton (case,
    spaces and the I/l look-alike do not matter: "AlCreated" reads as "AI Created")."""
    return T.skeleton(text) == T.skeleton(AI_LABEL)


def _label_indices(n_total: int, fps: float, n: int, min_s: float) -> list[int]:
    """Frames the disclosure check decodes: every half second of the first ``min_s`` seconds (the label must be
    on screen from the first frame), ``n`` evenly spread, and the last."""
    head = {min(n_total - 1, int(round(k * 0.5 * fps))) for k in range(int(min_s / 0.5) + 1)}
    head.add(min(n_total - 1, max(0, int(np.ceil(min_s * fps)) - 1)))
    return sorted(head | set(label_frames(n_total, n)))


def check_disclosure(plan: Storyboard | None, video: Path, *, n_frames: int = 8,
                     segment: tuple[Path, float, float] | None = None, read_label: bool = True,
                     min_label_s: float = 2.0) -> ComplianceCheck:
    """The "AI Created" label in the plan AND in the rendered video (and, for PCI, in the integrated video between
    its seams: ``segment=(integrated_path, seam_in_s, seam_out_s)``): its pixels in sampled frames, every half
    second of the first ``min_label_s`` seconds included (on screen from the first frame for at least 2 s); its
    letters at least :data:`producer.post.LABEL_LETTER_SHARE` of the shorter side; and its TEXT, read by OCR
    in its box of the first frame (``read_label``)."""
    from .producer.post import LABEL_LETTER_SHARE, label_box, label_letter_height, label_present  # noqa: PLC0415

    viol: list[Violation] = []
    if plan is not None and plan.disclosure != AI_LABEL:
        viol.append(Violation(check="disclosure", rule="label_not_planned", severity="minor",
                              message=f"the plan's disclosure is not '{AI_LABEL}'", evidence=Evidence(field="disclosure")))
    checked: dict[str, Any] = {}
    targets = [(video, 0.0, None, "creative")]
    if segment is not None:
        targets.append((segment[0], segment[1], segment[2], "integrated"))
    for path, t0, t1, name in targets:
        try:
            info = probe(path)
            fps = info.fps or 1.0
            n_total = info.n_frames
            a = int(round(t0 * fps))
            b = n_total if t1 is None else min(n_total, int(round(t1 * fps)))
            rel = _label_indices(max(1, b - a), fps, n_frames, min_label_s if name == "creative" else 0.0)
            idx = [a + i for i in rel]
            frames = read_frames(path, idx)
        except MediaError as e:
            viol.append(Violation(check="disclosure", rule="undecodable", severity="severe",
                                  message=f"the {name} video cannot be decoded: {e}",
                                  evidence=Evidence(field="frame", frame_path=display_path(path))))
            continue
        missing = [i for i, fr in zip(idx, frames) if not label_present(fr)]
        checked[f"{name}_frames"] = len(idx)
        checked[f"{name}_missing"] = len(missing)
        for i in missing:
            t = i / fps - t0
            early = name == "creative" and t < min_label_s
            viol.append(Violation(check="disclosure", rule="label_not_from_start" if early else "label_missing",
                                  severity="minor",
                                  message=f"no '{AI_LABEL}' label in frame {i} ({i / fps:.2f} s) of the {name} video"
                                  + (f": it must show from the first frame for {min_label_s:g} s" if early else ""),
                                  evidence=Evidence(slot=_slot_of(plan, t) if plan is not None else None,
                                                    start_s=round(i / fps, 3), end_s=round((i + 1) / fps, 3),
                                                    field="frame", frame_index=i, frame_path=display_path(path))))
        if name != "creative" or len(frames) == 0:
            continue
        first = frames[0]
        h, w = first.shape[:2]
        need = LABEL_LETTER_SHARE * min(w, h)
        got = label_letter_height(first)
        checked["label_letters_px"] = got
        checked["label_letters_min_px"] = round(need, 1)
        if idx[0] not in missing and got < 0.95 * need:
            viol.append(Violation(check="disclosure", rule="label_too_small", severity="minor",
                                  message=f"the label's letters are {got} px, under {LABEL_LETTER_SHARE:.0%} of the "
                                  f"frame's shorter side ({need:.0f} px)",
                                  evidence=Evidence(field="frame", frame_index=idx[0], frame_path=display_path(path))))
        if read_label:
            try:
                from .compliance.ocr import read_line  # noqa: PLC0415

                x0, y0, x1, y1 = label_box(w, h)
                text, conf = read_line(first[y0:y1, x0:x1])
            except Exception as e:  # noqa: BLE001 - no OCR: the pixel check stands alone, said in `checked`
                checked["label_text_error"] = f"{type(e).__name__}: {e}"
                continue
            checked["label_text"] = text
            if not label_text_ok(text):
                viol.append(Violation(check="disclosure", rule="label_text", severity="minor",
                                      message=f"the label in frame {idx[0]} reads '{text}', not '{AI_LABEL}'",
                                      evidence=Evidence(field="frame", text=text, frame_index=idx[0],
                                                        start_s=0.0, frame_path=display_path(path))))
    return _check("disclosure", viol, **checked)


def check_release(video: Path, plan: Storyboard | None = None, *, n_frames: int = 8, read_label: bool = True,
                  min_label_s: float = 2.0) -> ComplianceCheck:
    """The disclosure of a file about to be RELEASED: the visible label (:func:`check_disclosure`), a C2PA
    manifest that ``c2pa-python`` reads back with a valid signature (``validation_state`` Valid or Trusted; the
    study's certificate is untrusted, so Valid) and a ``c2pa.created`` action with the
    ``trainedAlgorithmicMedia`` source type, and the MP4's ``AIGC`` metadata with ``Label`` "1". A missing or
    broken manifest or missing AIGC tag is severe: the copy is not released."""
    from .compliance.disclosure import read_disclosure  # noqa: PLC0415

    base = check_disclosure(plan, video, n_frames=n_frames, read_label=read_label, min_label_s=min_label_s)
    viol = list(base.violations)
    ev = Evidence(field="file", frame_path=display_path(video))
    try:
        d = read_disclosure(video)
    except Exception as e:  # noqa: BLE001
        d = {"c2pa": {"present": False, "error": f"{type(e).__name__}: {e}"}, "aigc": None}
    c = d["c2pa"]
    if not c.get("present"):
        viol.append(Violation(check="disclosure", rule="c2pa_missing", severity="severe",
                              message=f"no C2PA manifest in the released file ({c.get('error', '')})", evidence=ev))
    else:
        if c.get("validation_state") not in ("Valid", "Trusted"):
            viol.append(Violation(check="disclosure", rule="c2pa_invalid", severity="severe",
                                  message=f"the C2PA manifest does not validate ({c.get('validation_state')}: "
                                  f"{', '.join(c.get('status', []))})", evidence=ev))
        if not c.get("ai_created"):
            viol.append(Violation(check="disclosure", rule="c2pa_not_ai", severity="severe",
                                  message="the C2PA manifest has no c2pa.created action with the "
                                  "trainedAlgorithmicMedia source type", evidence=ev))
    a = d["aigc"]
    if not a or str(a.get("Label")) != "1":
        viol.append(Violation(check="disclosure", rule="aigc_missing", severity="severe",
                              message="no AIGC metadata with Label 1 in the MP4", evidence=ev))
    return _check("disclosure", viol, **base.checked, c2pa=c, aigc=a or {})


def text_rendered(frame: np.ndarray, layer: Any, min_contrast: float = THRESHOLDS["text_contrast"]) -> bool:
    """Are the letters of ``layer`` (a :class:`post.Layer` of white text on a translucent dark box) burned into
    ``frame``? The letter pixels must read at least ``min_contrast`` grey levels brighter than the box pixels
    away from any letter (robust to the background showing through the box and to H.264 blur)."""
    import cv2  # noqa: PLC0415

    x0, y0, x1, y1 = layer.box
    reg = frame[y0:y1, x0:x1].astype(np.float32).mean(axis=2)
    letters = layer.alpha >= 0.99
    amax = float(layer.alpha[~letters].max()) if (~letters).any() else 0.0
    near = cv2.dilate(letters.astype(np.uint8), np.ones((3, 3), np.uint8)) > 0
    box = (layer.alpha > 0.05) & (layer.alpha <= amax + 1e-3) & ~near
    if not letters.any() or not box.any():
        return True  # nothing measurable: do not accuse
    return float(np.median(reg[letters])) - float(np.median(reg[box])) >= min_contrast


def draws_text(creative_dir: Path) -> bool:
    """Whether the creative's Producer draws the slots' on-screen text (``producer.json``): the compositor does,
    and every Producer with ``post_production``; a generative creative under the paper protocol (sora, veo, wan
    without post production) is the model's frames with only the label, so it never shows that text."""
    p = Path(creative_dir) / "producer.json"
    if not p.is_file():
        return True
    try:
        man = read_model(p, ProducerManifest)
    except Exception:  # noqa: BLE001 - unreadable: assume the text should be there
        return True
    return man.backend.startswith("compositor") or bool(man.settings.get("post_production", True))


def check_rendering(plan: Storyboard, video: Path, drawn: bool = True) -> ComplianceCheck:
    """Each slot's on-screen text is burned into the slot's middle frame (execution quality, used by the
    Reflector to route "text not rendered" to the Producer). Not checked when the Producer draws no text
    (``drawn`` False, :func:`draws_text`): there, a missing line is the protocol, not a rendering fault."""
    from .producer import post  # noqa: PLC0415

    if not drawn:
        return _check("rendering", [], slots_checked=0,
                      skipped="the Producer draws no on-screen text (generative, no post production)")
    viol: list[Violation] = []
    try:
        info = probe(video)
        spans = post.slot_spans(plan, info.fps)
        idx = [min(sp.start + sp.n // 2, info.n_frames - 1) for sp in spans]
        frames = read_frames(video, idx)
    except (MediaError, Exception) as e:  # noqa: BLE001 - a timing mismatch is reported, not raised
        return _check("rendering", [Violation(check="rendering", rule="undecodable", severity="minor",
                                              message=f"slots cannot be located in the video: {e}",
                                              evidence=Evidence(field="frame"))])
    n_checked = 0
    for sp, i, fr in zip(spans, idx, frames):
        lay = post.headline_layer(sp.slot.on_screen_text, info.width, info.height)
        if lay is None:
            continue
        n_checked += 1
        if not text_rendered(fr, lay):
            viol.append(Violation(check="rendering", rule="text_not_rendered", severity="minor",
                                  message=f"slot {sp.slot.index}'s on-screen text is not visible in frame {i}",
                                  evidence=Evidence(slot=sp.slot.index, start_s=sp.slot.start_s, end_s=sp.slot.end_s,
                                                    field="on_screen_text", text=sp.slot.on_screen_text,
                                                    frame_index=i, frame_path=display_path(video))))
    return _check("rendering", viol, slots_checked=n_checked)


# ------------------------------------------------------------------------------------- frames (OCR)
def ocr_indices(plan: Storyboard, fps: float, n_total: int, per_slot: int = 1) -> list[tuple[int, int]]:
    """(slot index, frame index) pairs the OCR reads: ``per_slot`` frames evenly inside each slot."""
    from .media import sample_indices  # noqa: PLC0415
    from .producer import post  # noqa: PLC0415

    out = []
    for sp in post.slot_spans(plan, fps):
        for k in sample_indices(sp.n, per_slot):
            out.append((sp.slot.index, min(n_total - 1, sp.start + k)))
    return out


def frame_units(plan: Storyboard, video: Path, *, per_slot: int = 1, cache: Any = None
                ) -> tuple[list[TextUnit], dict[str, Any]]:
    """The text lines OCR reads in the rendered ``video`` (:mod:`nextads_lib.compliance.ocr`, one or more frames
    per slot), as text units with their frame index and time; lines inside the label's box are left to the
    disclosure check. Returns the units and what was read (engine, frames, seconds, or the error)."""
    import time  # noqa: PLC0415

    from .compliance import ocr  # noqa: PLC0415

    t0 = time.perf_counter()
    info_out: dict[str, Any] = {"engine": ocr.ENGINE_NAME}
    try:
        info = probe(video)
        pairs = ocr_indices(plan, info.fps or 1.0, info.n_frames, per_slot)
        lines = ocr.video_text(video, sorted({i for _, i in pairs}), cache=cache)
    except Exception as e:  # noqa: BLE001 - no OCR is reported, the plan checks go on
        info_out["error"] = f"{type(e).__name__}: {e}"
        return [], info_out
    units = []
    fps = info.fps or 1.0
    for slot, i in pairs:
        for ln in lines.get(i, []):
            if in_label(ln.box, info.width, info.height):
                continue
            units.append(TextUnit("frame", ln.text, slot, round(i / fps, 3), round((i + 1) / fps, 3), source="frames",
                                  frame_index=i, frame_path=display_path(video)))
    info_out.update(frames=len(pairs), lines=len(units), seconds=round(time.perf_counter() - t0, 3))
    return units, info_out


def in_label(box: tuple[int, int, int, int], width: int, height: int) -> bool:
    """Is at least half of an OCR line's ``box`` inside the label's box (read by the disclosure check instead)?"""
    from .producer.post import label_box  # noqa: PLC0415

    lx0, ly0, lx1, ly1 = label_box(width, height)
    x0, y0, x1, y1 = box
    ix = max(0, min(x1, lx1) - max(x0, lx0)) * max(0, min(y1, ly1) - max(y0, ly0))
    return ix >= 0.5 * max(1, (x1 - x0) * (y1 - y0))


def _covered(tok: str, allowed: str, words: Sequence[str] = ()) -> bool:
    """Is an OCR word (letters and digits, look-alikes folded) the rendering of planned text? It is when it
    occurs in ``allowed``; when one run of 75% of its letters does (a word of 6+ letters: an OCR slip); or when
    runs of 4+ letters found in ``allowed`` cover 80% of it (words OCR glued across boxes or lines:
    "supportallet" = "support" + "wallet"; "podcastsless24bit" = "podcasts" + "lossless 24-bit"); or when it is
    within an OCR slip of one of the planned ``words`` (6+ letters, difflib ratio 0.8: "earburs" ~ "earbuds"; a
    shorter word with a wrong letter is as likely garbled as misread)."""
    import difflib  # noqa: PLC0415

    if tok in allowed:
        return True
    n = len(tok)
    if n >= 6 and words and difflib.get_close_matches(tok, words, n=1, cutoff=0.8):
        return True
    sm = difflib.SequenceMatcher(None, tok, allowed, autojunk=False)
    m = sm.find_longest_match(0, n, 0, len(allowed))
    if n >= 6 and m.size >= 0.75 * n:  # a short word is not covered by 3 of its letters ("vote" ~ "note")
        return True
    got, todo = 0, [(0, n)]
    while todo:
        a, b = todo.pop()
        if b - a < 4:
            continue
        m = sm.find_longest_match(a, b, 0, len(allowed))
        if m.size < 4:
            continue
        got += m.size
        todo += [(a, m.a), (m.a + m.size, b)]
    return got >= 0.8 * n


def grounding_texts(grounding: Grounding | None, cache: Any = None, root: Path | None = None,
                    kinds: Sequence[str] = ("user_visual", "product_image", "logo")) -> list[str]:
    """The text OCR reads in the creative's recorded grounding assets of ``kinds`` (user visuals, product images,
    logo): a user's photo with a caption or a product shot with its packaging shows that text in the frames, and
    it is not text the Producer invented. Empty when OCR is unavailable. ``root``: where relative asset paths start
    (default: the project root)."""
    if grounding is None:
        return []
    from .compliance import ocr  # noqa: PLC0415

    out: list[str] = []
    for s in grounding.sources:
        if s.kind not in kinds:
            continue
        try:
            out += ocr.image_text(Path(root) / s.path if root is not None and not Path(s.path).is_absolute()
                                  else resolve(s.path), cache=cache)
        except Exception:  # noqa: BLE001 - an unreadable asset adds no allowed text
            continue
    return out


def drop_numbers_shown_by_product(safety: ComplianceCheck, shown: str) -> ComplianceCheck:
    """``safety`` without the ``unsupported_number`` findings of frames whose number the product's own images
    or logo show (``shown``: their OCR text): a watch face's "10:09" or a pack's "340 g" drawn in the product
    shot is the advertiser's own material, not a number the Producer or the plan added."""
    numbers = T.plain_numbers(shown)
    keep = [v for v in safety.violations if not (
        v.rule == "unsupported_number" and v.evidence.field == "frame"
        and bool(T.plain_numbers(v.evidence.text)) and T.plain_numbers(v.evidence.text) <= numbers)]
    if len(keep) == len(safety.violations):
        return safety
    return safety.model_copy(update={"violations": keep, "passed": not keep})


def learned_violations(check: str, units: Sequence[TextUnit], found: Sequence[Violation] = (),
                       product: Product | None = None) -> list[Violation]:
    """The learned head's findings of ``check`` (:mod:`nextads_lib.compliance.head`) over ``units``, for the texts
    no finding of ``found`` already names: minor (revise), the probability and the head's provenance in the
    message. The plan's texts are read one by one (the composition description left out, as for the MiniLM
    policies); the lines OCR read in one frame are read together, in reading order, as the viewer reads them
    (a fragment such as "bag" says nothing alone); ``product``'s own name is masked (:func:`head.own_masked`), and a
    text that is the product's own copy verbatim (its skeleton inside the product's text: a selling point, also as
    OCR glued it) is the advertiser's material, not judged, as the rules pass a term the product's text has."""
    from .compliance import head  # noqa: PLC0415

    texts: list[TextUnit] = [u for u in units if u.field != "composition" and not u.ocr]
    frames: dict[int | None, list[TextUnit]] = {}
    for u in units:
        if u.ocr:
            frames.setdefault(u.frame_index, []).append(u)
    texts += [dataclasses.replace(lines[0], text=" ".join(x.text for x in lines)) for lines in frames.values()]
    own = T.skeleton(product_text(product)) if product is not None else ""
    texts = [u for u in texts if not (own and T.skeleton(u.text) and T.skeleton(u.text) in own)]
    seen = {v.evidence.context for v in found}
    out = []
    for u, p in zip(texts, head.hits(check, [u.text for u in texts], product)):
        if p is not None and u.text not in seen:
            out.append(Violation(check=check, rule="learned_head", severity="minor",
                                 message=f"'{u.text}' in {_where(u)} reads as a {check} finding to the learned head "
                                 f"(probability {p:.2f}; MiniLM + logistic regression fitted on the labelled build "
                                 "split)", evidence=u.evidence(u.text)))
    return out


def add_learned_findings(compliance: list[ComplianceCheck], plan: Storyboard | None,
                         frame_units_: Sequence[TextUnit] = (), product: Product | None = None
                         ) -> list[ComplianceCheck]:
    """``compliance`` with :func:`learned_violations` added to each text check (the ``learned_head`` switch);
    each such check records ``checked["learned_head"]``."""
    from .compliance import head  # noqa: PLC0415

    units = _units(plan, frame_units_)
    out = []
    for c in compliance:
        if c.check in head.HEAD_CHECKS:
            extra = learned_violations(c.check, units, c.violations, product)
            viol = c.violations + extra
            c = c.model_copy(update={"violations": viol, "passed": not viol, "checked": {
                **c.checked, "learned_head": {"threshold": head.load()["threshold"], "findings": len(extra)}}})
        out.append(c)
    return out


def unplanned_text(plan_texts: Sequence[str], frame_units_: Sequence[TextUnit], product: Product | None = None,
                   min_covered: float = 0.7, min_letters: int = 5, asset_texts: Sequence[str] = ()
                   ) -> list[Violation]:
    """Text the frames show that the plan never had (a generative Producer's invented or garbled words): an OCR
    line of which fewer than ``min_covered`` of the letters (in words of 3+ letters, look-alikes folded) are in
    words that render
    the plan's texts, the product's own text, the text of the grounding assets (``asset_texts``) or the label
    (:func:`_covered`: exact, one OCR slip, or glued across boxes), or a line of 2+ words none of which is a planned
    word exactly and one of which is not covered at all (every word garbled). Lines of fewer than ``min_letters``
    letters are not judged."""
    src = " ".join([*plan_texts, product_text(product) if product else "", *asset_texts, AI_LABEL])
    allowed = T.skeleton(src)
    words = sorted({T.fold(w) for w in T.tokens(src) if len(w) >= 3})
    out = []
    for u in frame_units_:
        toks = [T.fold(t) for t in T.tokens(u.text) if len(t) >= 3]
        if not toks or len(re.sub(r"[^a-z]", "", T.normalise(u.text))) < min_letters:
            continue  # a fragment this short is OCR noise as often as text (a logo's edge, a texture)
        # share of the line's letters in covered words: a 3-letter fragment beside a planned word is OCR noise
        cov = sum(len(t) for t in toks if _covered(t, allowed, words)) / sum(len(t) for t in toks)
        # a line of several words none of which is planned exactly, one of them not even within a slip, is drawn
        # garbled ("Yqur mqrning rltuxl"): OCR slips change a word or two of a rendered line, not every word
        garbled = len(toks) >= 2 and not any(t in words for t in toks) and not all(
            _covered(t, allowed, words) for t in toks)
        if cov < min_covered or garbled:
            out.append(Violation(check="rendering", rule="unplanned_text", severity="minor",
                                 message=f"frame {u.frame_index} ({u.start_s:.2f} s) shows text the plan never had: "
                                 f"'{u.text}' ({cov:.0%} of its words planned)", evidence=u.evidence(u.text)))
    return out


def model_compliance_enabled(backend_spec: str, th: dict[str, float]) -> bool:
    from .compliance.model_checks import is_model_backend  # noqa: PLC0415

    return bool(int(th.get("model_compliance", 0))) and is_model_backend(backend_spec)


def add_model_findings(compliance: list[ComplianceCheck], backend: Any, plan: Storyboard, product: Product,
                       video: Path, item: str, *, n_frames: int = 4) -> list[ComplianceCheck]:
    """The model-backed checks (:mod:`nextads_lib.compliance.model_checks`: one prompt per check over
    ``n_frames`` frames and the plan) added to the rules' checks of the same name; what each call did is in the
    check's ``checked['model']``."""
    from .compliance.model_checks import PROMPTS, model_compliance  # noqa: PLC0415
    from .media import sample_indices  # noqa: PLC0415

    try:
        info = probe(video)
        idx = sample_indices(info.n_frames, n_frames)
        frames = [(i, i / (info.fps or 1.0), fr) for i, fr in zip(idx, read_frames(video, idx))]
    except Exception as e:  # noqa: BLE001
        return [c.model_copy(update={"checked": {**c.checked, "model": f"error: {e}"}}) if c.check in PROMPTS else c
                for c in compliance]
    viol, calls = model_compliance(backend, plan, product, frames, item=item, frame_path=display_path(video))
    out = []
    for c in compliance:
        if c.check not in PROMPTS:
            out.append(c)
            continue
        add = [v for v in viol if v.check == c.check]
        out.append(c.model_copy(update={"passed": c.passed and not add, "violations": c.violations + add,
                                        "checked": {**c.checked, "model": calls.get(c.check, "not asked")}}))
    return out


# ------------------------------------------------------------------------------------------- utility
JudgeFn = Callable[..., Any]
VQFn = Callable[..., Any]


def _default_judge() -> JudgeFn | None:
    try:
        from .judge import judge_pair  # noqa: PLC0415
    except ImportError:
        return None
    return judge_pair


def _default_vq() -> VQFn | None:
    try:
        from .vbench import score_video  # noqa: PLC0415
    except ImportError:
        return None
    return score_video


class UtilityAdapter:
    """The utility track over the judge (``judge_pair``, contract of interfaces section 4) and video quality
    (``score_video``, section 3). ``judge_fn``/``vq_fn`` default to the real modules and may be stand-ins of the
    same signature (tests); a missing module gives scores of None with the reason."""

    PERSONALIZATION = ("personalization_presentation", "personalization_content")

    def __init__(self, judge_backend: str = "offline", vq_backend: str = "offline", cache_dir: str | Path | None = None,
                 *, judge_fn: JudgeFn | None = None, vq_fn: VQFn | None = None, n_frames: int = 8):
        self.judge_backend_name = judge_backend
        self.vq_backend = vq_backend
        self.cache_dir = cache_dir
        self.judge_fn = judge_fn if judge_fn is not None else _default_judge()
        self.vq_fn = vq_fn if vq_fn is not None else _default_vq()
        self.n_frames = n_frames
        self._backend = None

    @property
    def backend(self) -> Any:
        if self._backend is None:
            from .backends import get_backend  # noqa: PLC0415

            self._backend = get_backend(self.judge_backend_name, cache_dir=self.cache_dir)
        return self._backend

    def _judge(self, criterion: str, pair_dir: Path, task: str, product: Product, history: UserHistory | None
               ) -> tuple[float | None, Any]:
        if self.judge_fn is None:
            return None, "nextads_lib.judge is not available"
        try:
            js = self.judge_fn(criterion, pair_dir, task=task, product=product, history=history,
                               backend=self.backend, n_frames=self.n_frames)
        except Exception as e:  # noqa: BLE001 - recorded, the other dimensions go on
            return None, f"{type(e).__name__}: {e}"
        return js, None

    def score(self, pair_dir: Path, video: Path, task: str, product: Product, history: UserHistory | None,
              cache: Any = None) -> list[UtilityScore]:
        out: list[UtilityScore] = []
        # video quality
        if self.vq_fn is None:
            out.append(UtilityScore(dimension="video_quality", backend=self.vq_backend,
                                    error="nextads_lib.vbench is not available"))
        else:
            try:
                vq = self.vq_fn(video, backend=self.vq_backend, cache=cache)
                raw = {m: getattr(vq, m, None) for m in ("ms", "dd", "aq", "iq")}
                vals = [float(raw[m]) for m in ("ms", "aq", "iq") if raw[m] is not None]
                labels = getattr(vq, "labels", {}) or {}
                out.append(UtilityScore(
                    dimension="video_quality", score=round(float(np.clip(np.mean(vals), 0, 1)), 4) if vals else None,
                    raw=raw, backend=getattr(vq, "backend", self.vq_backend), proxy=bool(getattr(vq, "proxy", True)),
                    label="Video quality = mean(" + ", ".join(labels.get(m, m.upper()) for m in ("ms", "aq", "iq")) + ")",
                    error=getattr(vq, "error", None)))
            except Exception as e:  # noqa: BLE001
                out.append(UtilityScore(dimension="video_quality", backend=self.vq_backend,
                                        error=f"{type(e).__name__}: {e}"))
        dims: list[tuple[str, tuple[str, ...]]] = [("personalization", self.PERSONALIZATION),
                                                   ("product_alignment", ("product_alignment",))]
        if task == "pci":
            dims.append(("context_alignment", ("integration_quality",)))
        for dim, crits in dims:
            raw: dict[str, float | None] = {}
            labels, errors, proxy, backend = [], [], True, self.judge_backend_name
            for c in crits:
                js, err = self._judge(c, pair_dir, task, product, history)
                if js is None:
                    raw[c] = None
                    errors.append(f"{c}: {err}")
                    continue
                raw[c] = None if js.score is None else float(js.score)
                labels.append(js.label)
                proxy = bool(js.proxy)
                backend = js.backend
                if js.error:
                    errors.append(f"{c}: {js.error}")
            vals = [v for v in raw.values() if v is not None]
            out.append(UtilityScore(dimension=dim, score=round(float(np.mean(vals)) / 10.0, 4) if vals else None,
                                    raw=raw, backend=backend, proxy=proxy, label=" + ".join(labels) or dim,
                                    error="; ".join(errors) or None))
        return out


# -------------------------------------------------------------------------------------------- decision
def decide(compliance: Sequence[ComplianceCheck], utility_score: float | None,
           thresholds: dict[str, float] = THRESHOLDS) -> tuple[str, list[str]]:
    """accept / revise / reject with one rationale per reason (see the module docstring)."""
    viol = [v for c in compliance for v in c.violations]
    severe = [v for v in viol if v.severity == "severe"]
    minor = [v for v in viol if v.severity == "minor"]
    why: list[str] = []
    for v in severe:
        why.append(f"reject: {v.check}/{v.rule}: {v.message}" + (f" (slot {v.evidence.slot})" if v.evidence.slot is not None else ""))
    if utility_score is None:
        why.append("utility not available: the decision rests on compliance alone")
    elif utility_score < thresholds["reject_utility"]:
        why.append(f"reject: utility {utility_score:.2f} < {thresholds['reject_utility']:.2f}")
    elif utility_score < thresholds["accept_utility"]:
        why.append(f"revise: utility {utility_score:.2f} < {thresholds['accept_utility']:.2f}")
    for v in minor:
        why.append(f"revise: {v.check}/{v.rule}: {v.message}" + (f" (slot {v.evidence.slot})" if v.evidence.slot is not None else ""))
    if severe or (utility_score is not None and utility_score < thresholds["reject_utility"]):
        return "reject", why
    if minor or (utility_score is not None and utility_score < thresholds["accept_utility"]):
        return "revise", why
    why.append("accept: every compliance check passed" + ("" if utility_score is None else
                                                          f" and utility {utility_score:.2f} >= {thresholds['accept_utility']:.2f}"))
    return "accept", why


def _segment(creative_dir: Path, task: str) -> tuple[Path, float, float] | None:
    if task != "pci":
        return None
    ip, jp = creative_dir / "integrated.mp4", creative_dir / "integration.json"
    if not (ip.is_file() and jp.is_file()):
        return None
    d = read_json(jp)
    try:
        return ip, float(d["seam_in_s"]), float(d["seam_out_s"])
    except (KeyError, TypeError, ValueError):
        return None


def verify_creative(
    creative_dir: str | Path, *, pair_id: str, task: str, run: str, product: Product, history: UserHistory | None,
    library: ProductLibrary | None, utility: UtilityAdapter | None = None, round_index: int = 0,
    thresholds: dict[str, float] | None = None, cache: Any = None,
) -> Verification:
    """Verify the creative in ``creative_dir`` (``plan.json``, ``creative.mp4``, ``grounding.json``; for PCI also
    ``integrated.mp4`` + ``integration.json``): both tracks and the decision. Never raises for a bad creative:
    an unreadable plan or video is a severe violation with its reason."""
    creative_dir = Path(creative_dir)
    th = {**THRESHOLDS, **(thresholds or {})}
    video = creative_dir / "creative.mp4"
    n0 = len(utility.backend.usage) if utility is not None and utility._backend is not None else 0
    try:
        plan = read_model(creative_dir / "plan.json", Storyboard)
    except Exception as e:  # noqa: BLE001
        v = Violation(check="safety", rule="unreadable_plan", severity="severe", message=str(e),
                      evidence=Evidence(field="plan"))
        return Verification(pair_id=pair_id, task=task, run=run, round=round_index, video_path=display_path(video),
                            decision="reject", compliance=[_check("safety", [v])], rationales=[f"reject: {e}"],
                            thresholds=th, verifier_backend=utility.judge_backend_name if utility else "none")
    grounding = None
    gp = creative_dir / "grounding.json"
    if gp.is_file():
        try:
            grounding = read_model(gp, Grounding)
        except Exception:  # noqa: BLE001 - treated as no record
            grounding = None
    units: list[TextUnit] = []
    ocr_info: dict[str, Any] = {"enabled": False}
    if int(th.get("ocr_frames_per_slot", 0)) > 0 and video.is_file():
        units, ocr_info = frame_units(plan, video, per_slot=int(th["ocr_frames_per_slot"]), cache=cache)
        ocr_info["enabled"] = True
    rendering = check_rendering(plan, video, drawn=draws_text(creative_dir))
    planned = [u.text for u in text_units(plan, composition=False)]
    extra = unplanned_text(planned, units, product)
    if extra and grounding is not None:  # the assets' own text is read only when some line is not planned
        extra = unplanned_text(planned, units, product, asset_texts=grounding_texts(grounding, cache))
    if extra:
        rendering = rendering.model_copy(update={"passed": False, "violations": rendering.violations + extra})
    rendering.checked["ocr"] = ocr_info
    safety = check_safety(plan, product, units)
    if grounding is not None and any(v.rule == "unsupported_number" and v.evidence.field == "frame"
                                     for v in safety.violations):  # the product's images are read only then
        safety = drop_numbers_shown_by_product(
            safety, " ".join(grounding_texts(grounding, cache, kinds=("product_image", "logo"))))
    compliance = [
        safety,
        check_privacy(plan, product, history, grounding, units),
        check_fairness(plan, product, units),
        check_copyright(plan, product, library, grounding, history, units),
        check_disclosure(plan, video, n_frames=int(th["label_frames"]), segment=_segment(creative_dir, task),
                         read_label=int(th.get("ocr_frames_per_slot", 0)) > 0, min_label_s=float(th["min_label_s"])),
        rendering,
    ]
    if int(th.get("learned_head", 0)) > 0:
        compliance = add_learned_findings(compliance, plan, units, product)
    if utility is not None and model_compliance_enabled(utility.judge_backend_name, th):
        compliance = add_model_findings(compliance, utility.backend, plan, product, video, pair_id,
                                        n_frames=int(th["model_frames"]))
    scores: list[UtilityScore] = []
    if utility is not None:
        scores = utility.score(creative_dir, video, task, product, history, cache=cache)
    vals = [s.score for s in scores if s.score is not None]
    u = round(float(np.mean(vals)), 4) if vals else None
    decision, why = decide(compliance, u, th)
    usage = list(utility.backend.usage[n0:]) if utility is not None and utility._backend is not None else []
    return Verification(
        pair_id=pair_id, task=task, run=run, round=round_index, video_path=display_path(video), decision=decision,
        utility=scores, utility_score=u, compliance=compliance, rationales=why, thresholds=th,
        verifier_backend=utility.judge_backend_name if utility else "none",
        vq_backend=utility.vq_backend if utility else "", usage=usage,
        cost_usd=round(sum(x.cost_usd for x in usage), 6),
    )


__all__ = [
    "ABSOLUTE_CLAIMS", "CODE_VERSION", "DECEPTIVE_PATTERNS", "PROTECTED_TERMS", "REAL_BRANDS", "SUPERLATIVES",
    "THRESHOLDS", "UNSAFE_TERMS", "TextUnit", "UtilityAdapter", "add_learned_findings", "brand_in", "check_copyright", "check_disclosure",
    "add_model_findings", "check_release", "frame_units", "model_compliance_enabled", "grounding_texts", "in_label", "label_text_ok", "personal_in", "unplanned_text",
    "check_fairness", "check_privacy", "check_rendering", "check_safety", "claim_in", "decide", "label_frames",
    "drop_numbers_shown_by_product", "learned_violations", "numbers", "other_brands", "personal_data", "product_text", "text_rendered", "text_units", "verify_creative",
]
