"""Text checks that generalise beyond a word list (issue 15).

Every check works on :class:`TextUnit` s: a text of the plan (narration, on-screen text, hook, CTA, visual
description) or a line read from the rendered frames by OCR (``source="frames"``, with its frame index and
time). Matching is done on a normal form, never on the raw string:

- :func:`normalise`: Unicode NFKC, accents folded, case folded, typographic quotes and dashes unified;
- :func:`tokens` / :func:`stems`: words, each reduced by the Snowball English stemmer (``snowballstemmer``,
  pure Python, no data to download) after a few irregular plurals (women -> woman); a listed phrase matches
  any inflection of its words (``single mom`` ~ "single moms", ``guarantee`` ~ "guaranteed");
- :func:`skeleton`: letters and digits only, with common look-alike characters folded (``0``->o, ``1``->l ...):
  an identifier or brand in another notation ("U-8123", "#8123", "maya runs", "Coca Cola", "N1KE") has the same
  skeleton as the listed one; OCR lines, which often lose their spaces ("Nikerunning"), are matched on it too;
- patterns for what a list cannot hold: ages and age ranges (:data:`AGE_PATTERNS`: "in your 30s", "25-34",
  "over 40", "forty-somethings"), family status (:data:`FAMILY_PATTERNS`), prices and percentages checked
  against the product's own facts (:func:`money_values`, :func:`percent_values`), obfuscated e-mails;
- semantic matching with the packaged MiniLM (:mod:`nextads_lib.embed`) of each clause against short policy
  descriptions (:data:`POLICIES`) for paraphrased targeting and claims; the thresholds come from
  ``calibration.json`` (written by ``scripts/bench_compliance.py --calibrate`` on the labelled set's build
  split only).
"""

from __future__ import annotations

import json
import re
import unicodedata
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

from ..schemas import Evidence

CALIBRATION_PATH = Path(__file__).with_name("calibration.json")


# ------------------------------------------------------------------------------------------- units
@dataclass(frozen=True)
class TextUnit:
    """One piece of text that reaches the viewer (or describes the visuals), with its place: a field of the plan
    (``source="plan"``) or a line OCR read in a frame (``source="frames"``, ``field="frame"``)."""

    field: str
    text: str
    slot: int | None
    start_s: float | None
    end_s: float | None
    source: str = "plan"
    frame_index: int | None = None
    frame_path: str | None = None

    def evidence(self, token: str) -> Evidence:
        return Evidence(slot=self.slot, start_s=self.start_s, end_s=self.end_s, field=self.field, text=token,
                        context=self.text, frame_index=self.frame_index, frame_path=self.frame_path)

    @property
    def ocr(self) -> bool:
        return self.source == "frames"


# ------------------------------------------------------------------------------------- normal forms
_QUOTES = str.maketrans({"’": "'", "‘": "'", "`": "'", "´": "'", "“": '"', "”": '"', "–": "-", "—": "-",
                         "‐": "-", "‑": "-", "−": "-", "＃": "#", "＄": "$", "％": "%", "™": " ", "®": " ",
                         "©": " ", "℠": " "})


@lru_cache(maxsize=200_000)
def normalise(text: str) -> str:
    """NFKC, accents removed, case folded, quotes/dashes unified, whitespace collapsed (memoised: the checks
    normalise the same plan and OCR lines many times)."""
    t = unicodedata.normalize("NFKC", str(text).translate(_QUOTES)).translate(_QUOTES)
    t = "".join(c for c in unicodedata.normalize("NFKD", t) if not unicodedata.combining(c))
    return re.sub(r"\s+", " ", t.casefold()).strip()


_IRREGULAR = {"women": "woman", "men": "man", "children": "child", "kids": "kid", "people": "person",
              "mums": "mum", "moms": "mom", "wives": "wife", "teens": "teen", "grannies": "granny"}


def tokens(text: str) -> list[str]:
    """Words and numbers of the normal form; a possessive 's is dropped ("women's" -> "women")."""
    return list(_tokens(str(text)))


@lru_cache(maxsize=200_000)
def _tokens(text: str) -> tuple[str, ...]:
    t = re.sub(r"'s\b", "", normalise(text))
    return tuple(re.findall(r"[a-z0-9]+", t))


@lru_cache(maxsize=1)
def _stemmer() -> Any:
    import snowballstemmer  # noqa: PLC0415

    return snowballstemmer.stemmer("english")


@lru_cache(maxsize=50_000)
def stem(word: str) -> str:
    w = _IRREGULAR.get(word, word)
    return _stemmer().stemWord(w)


def stems(text: str) -> list[str]:
    return list(_stems(str(text)))


@lru_cache(maxsize=200_000)
def _stems(text: str) -> tuple[str, ...]:
    return tuple(stem(w) for w in _tokens(text))


_FOLD = str.maketrans({"0": "o", "1": "l", "i": "l", "|": "l", "3": "e", "5": "s", "$": "s", "@": "a", "7": "t"})


def fold(s: str) -> str:
    """Look-alike characters folded (digits in words, I/l, OCR confusions)."""
    return s.translate(_FOLD)


def skeleton(text: str, *, folded: bool = True) -> str:
    """Letters and digits of the normal form only ("@Maya_Runs" -> "mayaruns", "U-8123" -> "u8123")."""
    s = re.sub(r"[^a-z0-9]+", "", normalise(text))
    return fold(s) if folded else s


# ------------------------------------------------------------------------------------------ matching
def _sub_index(hay: list[str], needle: list[str]) -> int:
    n = len(needle)
    for i in range(len(hay) - n + 1):
        if hay[i : i + n] == needle:
            return i
    return -1


def phrase_in(phrase: str, text: str, *, ocr: bool = False) -> bool:
    """``phrase`` occurs in ``text`` as a run of whole words, each word compared by its stem (any inflection);
    for OCR text (spaces often lost) also as a run of letters that starts or ends a glued token, or, for a
    phrase of two or more words, anywhere in the text's letters."""
    ps = stems(phrase)
    if not ps:
        return False
    if _sub_index(stems(text), ps) >= 0:
        return True
    if ocr:
        sk = skeleton(phrase)
        if len(sk) < 4:
            return False
        if len(ps) >= 2 and sk in skeleton(text):
            return True
        for tok in tokens(text):
            f = fold(tok)
            if len(f) >= len(sk) + 3 and (f.startswith(sk) or f.endswith(sk)):
                return True
    return False


def notation_in(ident: str, text: str, *, ocr: bool = False) -> bool:
    """An identifier or name in any notation: its skeleton equals the skeleton of one to four consecutive words
    of ``text`` ("@maya_runs" ~ "Maya Runs", "maya-runs", "@ maya_runs"; "u_8123" ~ "U 8123", "#u8123")."""
    sk = skeleton(ident)
    if len(sk) < 3:
        return False
    toks = [fold(t) for t in tokens(text)]
    for i in range(len(toks)):
        acc = ""
        for j in range(i, min(i + 4, len(toks))):
            acc += toks[j]
            if acc == sk:
                return True
            if len(acc) >= len(sk):
                break
    if ocr and len(sk) >= 4:
        for t in toks:
            if len(t) >= len(sk) + 3 and (t.startswith(sk) or t.endswith(sk)):
                return True
    return False


# --------------------------------------------------------------------------------------- numbers
_NUMWORDS = {"zero": 0, "one": 1, "two": 2, "three": 3, "four": 4, "five": 5, "six": 6, "seven": 7, "eight": 8,
             "nine": 9, "ten": 10, "eleven": 11, "twelve": 12, "thirteen": 13, "fourteen": 14, "fifteen": 15,
             "sixteen": 16, "seventeen": 17, "eighteen": 18, "nineteen": 19, "twenty": 20, "thirty": 30,
             "forty": 40, "fifty": 50, "sixty": 60, "seventy": 70, "eighty": 80, "ninety": 90, "hundred": 100}
_NUM = r"\d+(?:[.,]\d+)*"
_NUMW = "|".join(sorted(_NUMWORDS, key=len, reverse=True))
_MONEY = re.compile(rf"(?:[$€£¥]\s?({_NUM}))|(?:(?<![\w.])({_NUM}|{_NUMW})\s?(?:usd|eur|gbp|dollars?|euros?|bucks|pounds|quid)\b)")
_PCT = re.compile(rf"(?:(?<![\w.])({_NUM})\s?(?:%|percent\b|per cent\b|pct\b))|"
                  r"(?:\b(" + "|".join(_NUMWORDS) + r")(?:[ -](" + "|".join(k for k, v in _NUMWORDS.items() if v < 10)
                  + r"))?\s?(?:percent|per cent)\b)")
_HALF = re.compile(r"\bhalf (?:price|off)\b|\b(?:bogo|buy one,? get one free)\b")


def _num(s: str) -> float | None:
    s = s.strip()
    if re.fullmatch(r"\d{1,3}(?:,\d{3})+(?:\.\d+)?", s):
        s = s.replace(",", "")
    s = s.replace(",", ".")
    try:
        return float(s)
    except ValueError:
        return None


def money_values(text: str) -> set[float]:
    """Prices in a text: "$19.99", "19 dollars", "€ 20", "19,99 eur"."""
    t = normalise(text)
    out = set()
    for a, b in _MONEY.findall(t):
        v = float(_NUMWORDS[b]) if b in _NUMWORDS else _num(a or b)
        if v is not None:
            out.add(round(v, 2))
    return out


def percent_values(text: str) -> set[float]:
    """Percentages: "30%", "30 percent", "thirty per cent", "half price" (50)."""
    t = normalise(text)
    out = set()
    for num, tens, units in _PCT.findall(t):
        if num:
            v = _num(num)
        else:
            v = float(_NUMWORDS[tens] + (_NUMWORDS[units] if units else 0))
        if v is not None:
            out.add(round(v, 2))
    if _HALF.search(t):
        out.add(50.0)
    return out


def plain_numbers(text: str) -> set[float]:
    """Every number of a text as a value ("10,000" = "10000" = 10000.0)."""
    out = set()
    for m in re.findall(_NUM, normalise(text)):
        v = _num(m)
        if v is not None:
            out.add(round(v, 2))
    return out


# ---------------------------------------------------------------------------------- fairness patterns
_TENS = r"(?:twenties|thirties|forties|fifties|sixties|seventies|eighties|20s|30s|40s|50s|60s|70s|80s|20's|30's|40's|50's|60's)"
#: ages and age ranges addressed in a text ("in your 30s", "25-34", "over 40", "aged 18 to 24", "40-somethings")
AGE_PATTERNS: tuple[re.Pattern[str], ...] = tuple(re.compile(p) for p in (
    rf"\b(?:in|into) (?:your|their|his|her|our|my) (?:early |mid |mid-|late )?{_TENS}\b",
    rf"\b(?:early|mid|late)[ -]?{_TENS}\b",
    # "over 40" is an age when nothing is counted after it ("if you're over 40", "over 40s", "over 40 and
    # fit"); "over 20 origins" counts origins; "aged 40" is always an age
    r"\b(?:over|under|past|above|turning|turned|hitting) (?:the age of )?(?:\d{2}|forty|fifty|sixty|thirty|twenty)"
    r"(?=\s*(?:$|[.,!?;:)]|years?\b(?! (?:of|ago|in|on|at)\b)|yrs?\b|and\b|or\b|\+|s\b|crowd\b|club\b))",
    # a person counted by age: "professionals under 30", "women over 50", "anyone past 60"
    r"\b(?:people|persons?|folks|adults|professionals|women|men|ladies|guys|girls|boys|anyone|everyone|those|"
    r"you|parents|singles|workers|students|couples|seniors|grown[- ]ups) (?:aged |who are )?(?:over|under|past|above) "
    r"(?:\d{2}|forty|fifty|sixty|thirty|twenty)\b",
    # "aged 40" is an age; "aged 14 days" is a process
    r"\b(?:aged?|ages) (?:\d{2}|forty|fifty|sixty|thirty|twenty)\b(?! ?(?:days?|weeks?|months?|hours?|minutes?|in\b|for\b))",
    r"\b\d{2} ?(?:-|to|–) ?\d{2} ?(?:year[- ]olds?|years? old|yo|yrs?(?: old)?|age group|crowd|set|bracket|demographic)\b",
    r"\bborn (?:in|before|after|around) (?:the )?(?:(?:19|20)?\d0'?s|(?:19|20)\d{2})\b",
    r"\b(?:past|over the hill|beyond) (?:your|their|his|her) (?:prime|best years)\b|\bover the hill\b",
    r"\b(?:for|calling all|attention|hey) (?:\w+ ){0,2}?(?:grandmas?|grandpas?|grandparents|grannies|grandmothers?|"
    r"grandfathers?)\b",
    r"\b(?:retirement|pension|school|college|legal drinking) age\b|\b(?:retirees?|pensioners?|teens?|teenagers?|tweens?)\b",
    r"\b(?:ages|aged|age) \d{2} ?(?:-|to|–|and|\+) ?(?:\d{2}|up|over|older)?\b",
    r"\b\d{2}(?: ?\+| plus)? ?(?:year[- ]olds?|years? old|yo)\b",
    r"\b(?:twenty|thirty|forty|fifty|sixty|20|30|40|50|60)[ -]?somethings?\b",
    r"\b(?:gen(?:eration)? ?(?:z|x|y|alpha)|zoomers?|boomers?|millennials?|over[- ]?(?:\d0|\d5)s)\b",
    r"\b(?:over|under)-(?:\d{2})(?=s\b|\+| crowd\b| set\b| club\b| group\b)",
    r"\b(?:at|for) your age\b|\b(?:too old|getting older|not getting any younger)\b",
))
#: family and relationship status addressed in a text
FAMILY_PATTERNS: tuple[re.Pattern[str], ...] = tuple(re.compile(p) for p in (
    r"\b(?:single|divorced|widowed|separated|unmarried|married|new|first[- ]time|expectant|expecting|working|stay[- ]at[- ]home|busy) (?:moms?|mums?|mothers?|dads?|fathers?|parents?|mommies|mummies)\b",
    r"\b(?:pregnant|pregnancy|expecting a (?:baby|child)|moms?[- ]to[- ]be|mums?[- ]to[- ]be|parents?[- ]to[- ]be|newlyweds?|newly married|just married|recently divorced|going through a divorce|empty[- ]nesters?|childless|child[- ]free|no kids|without kids|widows?|widowers?|divorcees?|singles? (?:over|under|in)\b)",
    r"\b(?:are|if) you (?:single|married|divorced|pregnant|widowed|engaged|a (?:single |new )?(?:mom|mum|mother|dad|father|parent))\b",
    r"\b(?:still single|single and|single again|live alone|living alone)\b",
    r"\b(?:recently|newly|just) (?:separated|divorced|widowed|married|engaged|single|wed)\b",
    r"\b(?:married|single|divorced|separated|widowed) with (?:kids|children|a baby|a child|twins|toddlers?)\b",
    # a parent addressed by the children they have: "moms of newborns", "parents raising toddlers", "dads with teens"
    r"\b(?:moms?|mums?|mothers?|mommies|dads?|fathers?|parents?|grand(?:parents?|mas?|pas?|mothers?|fathers?)) "
    r"(?:of|with|raising|expecting) (?:(?:young|little|small|new|small|two|three|grown[- ]up) )?"
    r"(?:newborns?|babies|a baby|toddlers?|twins|triplets|kids|children|little ones|teens?|teenagers?|infants?)\b",
    r"\b(?:no kids|without kids|kid[- ]free|have kids|with kids\?|got kids|have children)\b",
    r"\b(?:tied the knot|getting hitched|just got hitched|on your own with (?:the )?kids|raising kids (?:alone|on (?:your|their) own))\b",
))
#: other protected groups addressed by a description a word list does not hold (body, origin, faith)
GROUP_PATTERNS: tuple[re.Pattern[str], ...] = tuple(re.compile(p) for p in (
    r"\b(?:extra|few extra|spare) (?:pounds|kilos|kg|lbs|weight)\b|\bplus[- ]size\b|\bbig[- ]boned\b|\b(?:feeling|feel) fat\b",
    # the viewer's body addressed by comparison or by its type: "bodies like yours", "your body type"
    r"\b(?:bod(?:y|ies)|body types?|body shapes?|figures?|physiques?|builds?) like (?:yours|mine|theirs|ours)\b|"
    r"\byour (?:body (?:type|shape|size)|physique)\b",
    r"\bnew to (?:this|the|our) country\b|\b(?:expats?|refugees?|newcomers to|migrants?|asylum seekers?)\b",
    r"\b(?:people|persons?|families|those|folks|women|men) of (?:faith|colou?r|(?:a |your |their )?(?:religion|race|ethnicity|creed))\b",
    r"\b(?:in prayer|pray(?:s|ing)? (?:five|5) times|church[- ]?goers|believers)\b",
))


def ocr_digits(text: str) -> str:
    """An OCR line's letter-for-digit confusions next to digits undone ("OVER 5O" -> "over 50", "2l" -> "21")."""
    t = normalise(text)
    for _ in range(2):
        t = re.sub(r"(?<=\d)[o]|[o](?=\d)", "0", t)
        t = re.sub(r"(?<=\d)[il|](?=\d|\b)|(?<=\b)[il|](?=\d)", "1", t)
    return t


#: health, body and absolute claims written in words a list does not hold (a verb of effect near what it acts on)
_COND = (r"(?:headaches?|migraines?|anxiety|depression|stress|insomnia|fatigue|tiredness|illness(?:es)?|disease|diseases|"
         r"cancer|flu|colds?|infections?|acne|wrinkles?|pain|aches?|inflammation|allerg(?:y|ies)|diabetes|blood pressure|"
         r"cholesterol|liver|kidneys?|heart|immune system|immunity|memory|focus|concentration|iq|brain|mind|metabolism|"
         r"toxins?|hangovers?|jet lag|cravings?|appetite|ageing|aging|injur(?:y|ies)|hair loss|belly fat|body fat|fat|pounds|kilos)")
CLAIM_PATTERNS: tuple[re.Pattern[str], ...] = tuple(re.compile(p) for p in (
    rf"\b(?:treats?|treating|cures?|curing|heals?|healing|relieves?|relieving|prevents?|preventing|fights?|fighting|"
    rf"reverses?|reversing|detox(?:es|ifies)?|cleanses?|diagnos(?:es|e|ing)|detects?|detecting|clears?|clearing|"
    rf"erases?|eliminates?|ends|stops|kills|melts?|burns?|boosts?|raises?|improves?|sharpens?|lowers?|reduces?|"
    rf"strengthens?|repairs?|keeps? away)\b(?:\W+\w+){{0,3}}?\W+{_COND}\b",
    r"\b(?:slim(?:s|ming)? down|shed(?:s|ding)? (?:pounds|kilos|weight|fat)|drop(?:s|ping)? (?:\w+ )?(?:dress |jean )?sizes?|"
    r"lose (?:weight|pounds|kilos|fat)|weight[- ]loss|fat[- ]burn\w*|low[- ]cal\b|calorie[- ]free|appetite suppress\w*)",
    r"\b(?:replaces?|instead of) (?:your )?(?:\w+ )?(?:medication|medicine|meds|pills|antidepressants|sunscreen|spf|doctor)\b",
    r"\b(?:full refund|money[- ]back|your money back|pay you back|refund(?:ed)? if)\b",
    r"\b(?:never|won't ever|will not ever) (?:\w+ )?(?:fails?|let you down|breaks?|get (?:injured|hurt|sick|ill|tired))\b|"
    r"\bwithout fail\b|\bzero risk\b|\bworks every (?:single )?time\b",
    r"\b(?:scientists?|studies|research|science|doctors?|dermatologists?|experts?) (?:confirms?|shows?|proves?|says?|agrees?|backs?)\b|"
    r"\bbacked by (?:science|research|doctors)\b|\b(?:medically|clinically|scientifically) (?:proven|tested|shown)\b|"
    r"\b(?:doctor|dermatologist|vet)[- ](?:approved|recommended)\b",
    r"\b(?:no other \w+ comes close|nothing (?:else )?comes close|beats every|better than (?:any|every|all) other)\b",
    r"\b(?:add|adds) years to your life\b|\blive longer\b",
    r"\b(?:recommended|approved|endorsed|prescribed|trusted|used|worn|chosen|preferred) by (?:\w+ ){0,4}?(?:doctors?|"
    r"dentists?|dermatologists?|vets?|veterinarians?|physicians?|nutritionists?|experts?|scientists?|the fda|nurses?|"
    r"champions?|medallists?|medalists?|olympians?|athletes|pros|professionals)\b",
    # a superlative placed on a scale no fact can back: "the finest coffee on earth", "the smoothest ever made"
    r"\b(?:the )?\w+est (?:\w+ ){0,2}?(?:on earth|in the world|on the planet|in history|ever made|of all time)\b",
    r"\b(?:skip|ditch|forget|drop|no need for|throw away) (?:the |your )?(?:sunscreen|spf|medication|medicine|meds|pills|"
    r"doctor|inhaler|glasses)\b",
))
#: false scarcity or urgency: "only three bags left", "2 left in stock"
SCARCITY_PATTERNS: tuple[re.Pattern[str], ...] = tuple(re.compile(p) for p in (
    r"\b(?:only|just) (?:\d+|one|two|three|four|five|a few|a handful of) (?:\w+ )?(?:left|remaining)\b",
    r"\b(?:\d+|one|two|three) left in stock\b|\bwhile (?:stocks|supplies) last\b|\b(?:ends|expires) (?:tonight|today|at midnight)\b",
    r"\b(?:today|tonight) only\b|\bbefore (?:it's|they're|it is|they are) gone\b",
))
#: "best" in a usage instruction or idiom, not a claim about the product ("best enjoyed within a month",
#: "at its best with milk", "our best-kept secret", "best before")
_BEST_IDIOM = re.compile(r"\bat (?:its|their|your|his|her|our) best\b|\bbest[- ](?:kept|enjoyed|served|before|brewed|stored|"
                         r"used|paired|drunk|consumed|with|when|if|after|within)\b|\b(?:do|try) (?:your|our) best\b|"
                         r"\bthe best part of\b|\ball the best\b")


def best_idioms(text: str) -> str:
    """``text`` with every idiomatic "best" (:data:`_BEST_IDIOM`) blanked, for the superlative check."""
    return _BEST_IDIOM.sub(" ", normalise(text))


#: the people a pattern addresses (plural nouns of :data:`FAMILY_PATTERNS`, :data:`AGE_PATTERNS` and the fairness
#: lexicon); OCR glues them to the next or previous word ("NEW MOMS LOVE IT" read "new momsloveit"), and
#: :func:`deglue` takes them apart again. Plurals of 4+ letters only: "mom" starts "momentum", "teens" ends
#: "canteens"
GLUE_WORDS: frozenset[str] = frozenset({
    "moms", "mums", "mothers", "mommies", "mummies", "dads", "fathers", "parents", "newlyweds", "widows", "widowers",
    "divorcees", "singles", "grandmas", "grandpas", "grandparents", "retirees", "pensioners", "seniors", "boomers",
    "millennials", "women", "ladies", "girls", "guys",
})


def deglue(text: str) -> str:
    """An OCR line's words that lost the space around a :data:`GLUE_WORDS` noun split again ("new momsloveit" ->
    "new moms loveit", "singlemoms" -> "single moms"); letters glued to digits too ("over50" -> "over 50").
    The parts left over keep 3+ letters, so a longer word that merely starts or ends with one stays whole."""
    t = re.sub(r"(?<=[a-z])(?=\d)|(?<=\d)(?=[a-z]{3,})", " ", text)
    out = []
    for w in t.split(" "):
        m = re.fullmatch(r"([^a-z]*)([a-z]+)([^a-z]*)", w)
        if m and len(m.group(2)) >= 7:
            core = m.group(2)
            for g in GLUE_WORDS:
                if core.startswith(g) and len(core) - len(g) >= 3:
                    core = f"{g} {core[len(g):]}"
                    break
                if core.endswith(g) and len(core) - len(g) >= 3:
                    core = f"{core[: -len(g)]} {g}"
                    break
            w = m.group(1) + core + m.group(3)
        out.append(w)
    return " ".join(out)


def pattern_hits(patterns: tuple[re.Pattern[str], ...], text: str, *, ocr: bool = False) -> list[str]:
    """The matches of ``patterns`` in the normal form of ``text``; for an OCR line also in its de-glued form
    (:func:`deglue`), each match once."""
    t = ocr_digits(text) if ocr else normalise(text)
    hits = [m.group(0) for p in patterns for m in p.finditer(t)]
    if ocr:
        d = deglue(t)
        if d != t:
            hits += [h for h in (m.group(0) for p in patterns for m in p.finditer(d)) if h not in hits]
    return hits


# ------------------------------------------------------------------------------------------ e-mails
_DOT = r"(?:\s?\.\s?|\s?\(dot\)\s?|\s?\[dot\]\s?| dot )"
_OBF_EMAIL = re.compile(r"\b[a-z0-9_%+-]+(?:" + _DOT + r"[a-z0-9_%+-]+)*\s?(?:@|\(at\)|\[at\]| at )\s?[a-z0-9-]{2,}"
                        + _DOT + r"(?:com|net|org|io|de|co|uk|fr|edu|me)\b")
#: words before "at <site>.com" that make it a web address to visit, not a mailbox ("order at morrowroast.com")
_SITE_VERBS = {"order", "shop", "buy", "visit", "find", "us", "online", "available", "sold", "more", "info", "now",
               "today", "it", "them", "book", "subscribe", "join", "learn", "read", "watch", "stream", "listen"}


def obfuscated_emails(text: str) -> list[str]:
    out = []
    for m in _OBF_EMAIL.findall(normalise(text)):
        local = re.split(r"\s?(?:@|\(at\)|\[at\]| at )\s?", m, maxsplit=1)[0]
        if "@" in m or local not in _SITE_VERBS:
            out.append(m)
    return out


# ---------------------------------------------------------------------------------------- semantics
#: short policy descriptions; a clause whose MiniLM similarity to one of a policy's descriptions reaches the
#: policy's calibrated threshold is a finding of that policy
POLICIES: dict[str, tuple[str, ...]] = {
    "targeting": (
        "made for people of a certain age",
        "for people in their thirties",
        "because you are getting older",
        "for mothers with young children",
        "for single parents",
        "because you are divorced",
        "for people of your religion",
        "for people of your race or ethnicity",
        "for people with a disability",
        "for gay and lesbian people",
        "because you are overweight",
        "for women only",
        "for immigrants",
    ),
    "claims": (
        "this product cures a disease",
        "guaranteed results or your money back",
        "clinically proven medical benefit",
        "helps you lose weight fast",
        "no side effects at all",
        "approved by doctors",
        "works better than every other product",
        "prevents illness",
        "it will never fail",
    ),
}


#: set by the calibration (``{"thresholds": {}}``: rules only) to bypass ``calibration.json``
OVERRIDE: dict[str, Any] | None = None


def calibration() -> dict[str, Any]:
    """The calibrated thresholds (``calibration.json``); a policy without one is off."""
    if OVERRIDE is not None:
        return OVERRIDE
    return _calibration_file()


@lru_cache(maxsize=1)
def _calibration_file() -> dict[str, Any]:
    if CALIBRATION_PATH.is_file():
        return json.loads(CALIBRATION_PATH.read_text())
    return {"thresholds": {}}


def clauses(text: str) -> list[str]:
    parts = re.split(r"(?<=[.!?;:])\s+|\s+-\s+|,\s+(?=(?:and|but|so|because|for|if)\b)", str(text))
    return [p.strip() for p in parts if len(p.strip().split()) >= 2]


def semantic_scores(policy: str, texts: list[str]) -> list[tuple[float, str, str]]:
    """Per text: (best similarity, the clause, the description it matched) over the text's clauses."""
    from ..embed import embed  # noqa: PLC0415

    descs = list(POLICIES[policy])
    cl = [clauses(t) or [t] for t in texts]
    flat = [c for cs in cl for c in cs]
    if not flat:
        return [(0.0, "", "") for _ in texts]
    sims = embed(flat) @ embed(descs).T
    out, k = [], 0
    for cs in cl:
        best = (-1.0, "", "")
        for c in cs:
            j = int(sims[k].argmax())
            if float(sims[k, j]) > best[0]:
                best = (float(sims[k, j]), c, descs[j])
            k += 1
        out.append(best)
    return out


def semantic_hits(policy: str, texts: list[str], threshold: float | None = None) -> list[tuple[float, str, str] | None]:
    """:func:`semantic_scores` kept where the score reaches the policy's calibrated threshold (None otherwise)."""
    th = threshold if threshold is not None else calibration().get("thresholds", {}).get(policy)
    if th is None or not texts:
        return [None for _ in texts]
    return [s if s[0] >= th else None for s in semantic_scores(policy, texts)]


__all__ = [
    "AGE_PATTERNS", "CALIBRATION_PATH", "CLAIM_PATTERNS", "FAMILY_PATTERNS", "GROUP_PATTERNS", "SCARCITY_PATTERNS",
    "best_idioms", "deglue", "GLUE_WORDS", "ocr_digits", "POLICIES", "TextUnit", "calibration", "clauses", "fold",
    "money_values", "normalise", "notation_in", "obfuscated_emails", "pattern_hits", "percent_values", "phrase_in",
    "plain_numbers", "semantic_hits", "semantic_scores", "skeleton", "stem", "stems", "tokens",
]
