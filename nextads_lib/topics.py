"""The study's topic taxonomy and style vocabularies.

The embedded sample draws each user's hidden topics from here, the product library declares which topics
each product suits, and the offline Director maps free text onto these topics by sentence embeddings.
Real-data runs with a VLM Director are not limited to this list (profiles carry free-text topic names).
"""

from __future__ import annotations

from typing import Literal

#: topic id -> (display name, one-sentence description used for embedding, keywords)
TOPICS: dict[str, tuple[str, str, tuple[str, ...]]] = {
    "fitness": ("Fitness & Training", "home workouts, gym training, strength and cardio routines",
                ("workout", "gym", "squat", "cardio", "reps", "training")),
    "running": ("Running & Marathons", "running routes, marathon preparation, pace and running gear",
                ("run", "marathon", "pace", "trail", "5k", "sneakers")),
    "skincare": ("Skincare & Beauty", "skincare routines, serums, makeup looks and beauty tips",
                 ("skincare", "serum", "glow", "makeup", "moisturizer", "sunscreen")),
    "fashion": ("Fashion & Outfits", "outfit ideas, seasonal wardrobes, streetwear and styling",
                ("outfit", "style", "wardrobe", "streetwear", "coat", "look")),
    "food": ("Food & Cooking", "recipes, home cooking, street food and restaurant visits",
             ("recipe", "cooking", "spicy", "noodles", "hotpot", "dinner")),
    "travel": ("Travel & City Walks", "travel vlogs, city guides, weekend trips and hidden spots",
               ("trip", "city", "travel", "hotel", "flight", "explore")),
    "tech": ("Tech & Gadgets", "smartphone reviews, gadgets, unboxings and desk setups",
             ("phone", "gadget", "unboxing", "battery", "camera", "setup")),
    "gaming": ("Gaming", "video games, esports highlights, console and mobile gaming",
               ("game", "gaming", "console", "esports", "level", "controller")),
    "music": ("Music & Concerts", "songs, concerts, playlists and music production",
              ("song", "concert", "playlist", "beat", "guitar", "live")),
    "movies": ("Movies & Series", "film reviews, binge-worthy series and streaming picks",
               ("movie", "series", "episode", "binge", "film", "trailer")),
    "pets": ("Pets", "cats, dogs and everyday life with pets",
             ("cat", "dog", "puppy", "kitten", "pet", "vet")),
    "home": ("Home & Solo Living", "apartment decor, cozy solo living diaries and organisation",
             ("apartment", "cozy", "decor", "room", "solo", "organize")),
    "outdoors": ("Outdoors & Hiking", "hiking, camping, mountains and nature trips",
                 ("hike", "camping", "mountain", "forest", "tent", "lake")),
    "productivity": ("Study & Productivity", "study sessions, work routines, notes and focus tips",
                     ("study", "focus", "notes", "desk", "exam", "routine")),
    "coffee": ("Coffee & Cafés", "coffee brewing, latte art and café hopping",
               ("coffee", "latte", "espresso", "cafe", "brew", "beans")),
    "commute": ("Commute & City Life", "daily commute, night life, getting around the city",
                ("commute", "subway", "night", "ride", "traffic", "downtown")),
}

TOPIC_IDS: tuple[str, ...] = tuple(TOPICS)

Tone = Literal["humorous", "informative", "emotional", "energetic", "calm", "luxurious"]
TONES: tuple[str, ...] = ("humorous", "informative", "emotional", "energetic", "calm", "luxurious")
NarrativeStructure = Literal["tutorial", "story", "listicle", "review", "montage", "vlog"]
NARRATIVES: tuple[str, ...] = ("tutorial", "story", "listicle", "review", "montage", "vlog")
Lighting = Literal["bright", "warm", "cool", "dim", "neon"]
LIGHTINGS: tuple[str, ...] = ("bright", "warm", "cool", "dim", "neon")
Motion = Literal["static", "slow", "dynamic"]
MOTIONS: tuple[str, ...] = ("static", "slow", "dynamic")
CameraMove = Literal["static", "pan_left", "pan_right", "zoom_in", "zoom_out", "push_in", "tilt_up", "tilt_down"]
CAMERA_MOVES: tuple[str, ...] = ("static", "pan_left", "pan_right", "zoom_in", "zoom_out", "push_in", "tilt_up", "tilt_down")

#: named palettes (hex) that ground-truth visual styles draw from
PALETTES: dict[str, tuple[str, ...]] = {
    "pastel": ("#F6C6D0", "#C9E4DE", "#FAEDCB", "#C6DEF1"),
    "earth": ("#8B5E3C", "#C2A878", "#6B705C", "#DDBEA9"),
    "neon": ("#FF2E88", "#00F0FF", "#7A00FF", "#111111"),
    "mono": ("#111111", "#555555", "#AAAAAA", "#F2F2F2"),
    "vivid": ("#FF595E", "#FFCA3A", "#8AC926", "#1982C4"),
    "ocean": ("#03045E", "#0077B6", "#90E0EF", "#CAF0F8"),
}


def topic_name(topic_id: str) -> str:
    return TOPICS[topic_id][0] if topic_id in TOPICS else topic_id


def topic_text(topic_id: str) -> str:
    """The text a topic is embedded from."""
    name, desc, kws = TOPICS[topic_id]
    return f"{name}: {desc} ({', '.join(kws)})"
