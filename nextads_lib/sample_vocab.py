"""The embedded sample's own vocabulary: fine-grained interests, the phrasings and details its notes are
written with, title and note styles, and noise notes.

Only :mod:`nextads_lib.sample` may import this module (``tests/test_sample.py`` checks every import in the
package): the Director, the judge and the benchmark builder must recognise a user's interests from the
history's words as they would on real data, not from the words the sample was written with. Each interest
names the coarse topic of :mod:`nextads_lib.topics` it falls under; that mapping is used only to label the
hidden truth (``GroundTruth.topics``) and to pick the drawn motif of the images.
"""

from __future__ import annotations

from typing import NamedTuple


class Interest(NamedTuple):
    name: str  # what a person would call it ("Winter Outfits")
    topic: str  # the coarse topic id it falls under (truth label and image motif only)
    phrasings: tuple[str, ...]  # ways a note refers to it, lower case
    details: tuple[str, ...]  # concrete things a note about it mentions


_I = Interest
INTERESTS: tuple[Interest, ...] = (
    # fitness
    _I("Home Workouts", "fitness", ("home workouts", "training in the living room", "no-gym sessions"),
       ("yoga mat", "resistance band", "burpees", "plank timer", "kettlebell")),
    _I("Powerlifting", "fitness", ("powerlifting", "heavy lifting days", "chasing a new deadlift PR"),
       ("barbell", "chalk", "deadlift", "lifting belt", "squat rack")),
    _I("Pilates Mornings", "fitness", ("pilates", "reformer classes", "core work at dawn"),
       ("reformer", "core", "breathing", "posture", "grip socks")),
    _I("Calisthenics Progress", "fitness", ("calisthenics", "bodyweight skills", "pull-up bar progress"),
       ("pull-up bar", "muscle-up", "handstand", "parallettes", "dips")),
    _I("Postpartum Fitness", "fitness", ("getting fit after the baby", "postpartum training", "mom workouts"),
       ("stroller walk", "pelvic floor", "nap-time session", "light dumbbells", "baby carrier")),
    # running
    _I("Marathon Training", "running", ("marathon training", "the road to 42 km", "long-run sundays"),
       ("energy gel", "long run", "race bib", "taper week", "split times")),
    _I("Trail Running", "running", ("trail running", "running in the hills", "muddy single-track runs"),
       ("trail shoes", "hydration vest", "switchbacks", "elevation gain", "headlamp")),
    _I("Couch to 5K", "running", ("learning to run", "couch to 5k", "my first 5 kilometres"),
       ("walk breaks", "interval app", "shin splints", "beginner pace", "park loop")),
    _I("Running Shoe Reviews", "running", ("running shoe reviews", "testing new trainers", "shoe rotation talk"),
       ("carbon plate", "heel drop", "foam midsole", "outsole wear", "fit test")),
    _I("Night Runs", "running", ("night runs", "running after dark", "late-evening laps"),
       ("reflective vest", "streetlights", "quiet roads", "headlamp", "cool air")),
    # skincare
    _I("Minimalist Skincare", "skincare", ("a minimalist routine", "three-step skincare", "skin care without fuss"),
       ("gentle cleanser", "moisturiser", "sunscreen", "barrier repair", "fragrance-free")),
    _I("Acne Journey", "skincare", ("my acne journey", "fighting breakouts", "clearing my skin"),
       ("salicylic acid", "pimple patches", "dermatologist", "retinoid", "before and after")),
    _I("K-Beauty Routines", "skincare", ("korean skincare", "k-beauty layering", "the ten-step routine"),
       ("essence", "sheet mask", "snail mucin", "double cleanse", "toner pads")),
    _I("Everyday Makeup Looks", "skincare", ("everyday makeup", "a five-minute face", "no-makeup makeup"),
       ("tinted balm", "brow gel", "concealer", "cream blush", "mascara")),
    _I("Sun Protection", "skincare", ("sun protection", "reapplying spf", "sunscreen talk"),
       ("spf 50", "mineral filter", "white cast", "reapplication", "uv index")),
    # fashion
    _I("Winter Outfits", "fashion", ("winter outfits", "dressing for the cold", "layering for snowy days"),
       ("wool coat", "chunky scarf", "thermal leggings", "puffer jacket", "knit beanie")),
    _I("Thrift Flips", "fashion", ("thrift flips", "second-hand finds", "upcycling old clothes"),
       ("thrift store", "sewing machine", "oversized blazer", "patchwork", "vintage denim")),
    _I("Capsule Wardrobe", "fashion", ("a capsule wardrobe", "owning fewer clothes", "mix-and-match basics"),
       ("white shirt", "neutral tones", "thirty pieces", "trench coat", "loafers")),
    _I("Sneaker Culture", "fashion", ("sneaker culture", "my sneaker collection", "release-day drops"),
       ("limited drop", "retro colourway", "shoe box", "resale price", "lacing")),
    _I("Office Wear", "fashion", ("office outfits", "what I wear to work", "smart casual for the office"),
       ("tailored trousers", "blazer", "loafers", "tote bag", "silk blouse")),
    _I("Wedding Guest Looks", "fashion", ("wedding guest outfits", "dressing for weddings", "what to wear to a ceremony"),
       ("midi dress", "heels", "clutch", "dress code", "fascinator")),
    # food
    _I("Sichuan Cooking", "food", ("sichuan cooking", "numbing-spicy dishes", "chilli oil everything"),
       ("sichuan pepper", "chilli oil", "mapo tofu", "wok", "dried chillies")),
    _I("Meal Prep Sundays", "food", ("meal prep", "cooking for the whole week", "batch cooking on sundays"),
       ("glass containers", "rice cooker", "chicken breast", "roasted veg", "portions")),
    _I("Sourdough Baking", "food", ("sourdough baking", "bread from my starter", "weekend loaves"),
       ("starter", "banneton", "crumb shot", "scoring", "dutch oven")),
    _I("Street Food Hunting", "food", ("street food hunting", "night-market snacks", "eating at food stalls"),
       ("skewers", "dumplings", "queue", "food stall", "grilled squid")),
    _I("Vegan Recipes", "food", ("vegan recipes", "plant-based dinners", "cooking without meat"),
       ("chickpeas", "tofu scramble", "oat milk", "lentil stew", "nutritional yeast")),
    _I("Hotpot Nights", "food", ("hotpot nights", "sharing a bubbling pot", "dipping everything in broth"),
       ("split pot", "beef slices", "dipping sauce", "enoki", "broth")),
    # travel
    _I("Budget Backpacking", "travel", ("budget backpacking", "travelling on little money", "hostel hopping"),
       ("hostel bunk", "night bus", "backpack", "street map", "cheap eats")),
    _I("Japan Trip Planning", "travel", ("planning a japan trip", "itineraries for japan", "temples and trains in japan"),
       ("rail pass", "shrine", "convenience store", "ryokan", "bullet train")),
    _I("Weekend City Breaks", "travel", ("weekend city breaks", "48 hours in a new city", "short trips by train"),
       ("old town", "museum pass", "boutique hotel", "train station", "walking tour")),
    _I("Island Getaways", "travel", ("island getaways", "beach escapes", "slow days by the sea"),
       ("ferry", "snorkel", "beach hut", "sunset", "coconut")),
    _I("Hidden Cafes Abroad", "travel", ("hidden spots abroad", "off-the-map corners of a city", "secret alleys on trips"),
       ("side street", "local market", "rooftop", "tiny bookshop", "old map")),
    # tech
    _I("Desk Setup Tours", "tech", ("desk setup tours", "my work-from-home desk", "cable management"),
       ("monitor arm", "mechanical keyboard", "desk mat", "cable tray", "ring light")),
    _I("Smartphone Camera Tests", "tech", ("phone camera tests", "shooting on a smartphone", "night mode comparisons"),
       ("night mode", "zoom lens", "portrait mode", "sample shots", "sensor")),
    _I("Smart Home Gadgets", "tech", ("smart home gadgets", "automating my flat", "voice assistant routines"),
       ("smart plug", "motion sensor", "smart bulb", "hub", "robot vacuum")),
    _I("Budget Tech Finds", "tech", ("budget tech", "cheap gadgets that work", "affordable accessories"),
       ("power bank", "earbuds", "usb-c hub", "phone stand", "under 20 dollars")),
    _I("Laptop Reviews", "tech", ("laptop reviews", "choosing a new laptop", "notebooks for students"),
       ("battery life", "keyboard travel", "thin bezel", "benchmark", "fan noise")),
    # gaming
    _I("Retro Gaming", "gaming", ("retro games", "old consoles", "the games of my childhood"),
       ("cartridge", "pixel art", "crt screen", "save file", "arcade stick")),
    _I("Cozy Farming Games", "gaming", ("cozy games", "farming sims", "gentle games to unwind"),
       ("crop field", "villagers", "fishing spot", "watering can", "seasons")),
    _I("Competitive Shooters", "gaming", ("competitive shooters", "ranked fps matches", "aim training"),
       ("crosshair", "headshot", "ranked ladder", "clutch round", "aim trainer")),
    _I("Speedrunning", "gaming", ("speedrunning", "routing a game for time", "chasing a world record"),
       ("splits", "glitch skip", "timer", "personal best", "route")),
    _I("Handheld Console Life", "gaming", ("handheld gaming", "playing on the go", "portable consoles"),
       ("handheld", "carrying case", "battery", "thumbsticks", "sleep mode")),
    # music
    _I("Vinyl Collecting", "music", ("vinyl collecting", "record shopping", "crate digging"),
       ("turntable", "record store", "sleeve art", "first pressing", "needle")),
    _I("Indie Concerts", "music", ("indie gigs", "small-venue concerts", "live shows in tiny clubs"),
       ("setlist", "front row", "ticket stub", "encore", "merch table")),
    _I("Bedroom Music Production", "music", ("bedroom production", "making beats at home", "producing tracks on a laptop"),
       ("midi keyboard", "synth", "drum loop", "headphones", "mixing")),
    _I("Learning Guitar", "music", ("learning guitar", "practising chords", "my guitar lessons"),
       ("capo", "barre chord", "fingerpicking", "metronome", "calluses")),
    _I("Lo-fi Study Playlists", "music", ("lo-fi playlists", "background music for studying", "chill beats"),
       ("lo-fi beats", "rainy window", "vinyl crackle", "playlist", "headphones")),
    # movies
    _I("Horror Movie Marathons", "movies", ("horror movie nights", "watching scary films", "jump-scare marathons"),
       ("jump scare", "haunted house", "blanket", "slasher", "lights off")),
    _I("K-Drama Binges", "movies", ("k-drama binges", "korean series", "staying up for one more episode"),
       ("subtitles", "second lead", "finale", "tissue box", "episode sixteen")),
    _I("Film Photography Cinema", "movies", ("classic cinema", "old films on the big screen", "arthouse screenings"),
       ("35mm print", "black and white", "director's cut", "film festival", "repertory cinema")),
    _I("Anime Seasons", "movies", ("anime", "this season's shows", "catching up on a series"),
       ("opening theme", "studio", "manga", "cliffhanger", "weekly episode")),
    _I("Movie Soundtracks", "movies", ("film scores", "movie soundtracks", "composers for the screen"),
       ("orchestra", "main theme", "credits", "score", "leitmotif")),
    # pets
    _I("Cat Parenting", "pets", ("life with my cat", "cat parenting", "my cat's daily drama"),
       ("litter box", "scratching post", "cat tree", "treats", "purring")),
    _I("Puppy Training", "pets", ("puppy training", "raising a new puppy", "teaching my dog to sit"),
       ("clicker", "leash", "crate", "treat pouch", "recall")),
    _I("Rescue Dogs", "pets", ("rescue dogs", "adopting from a shelter", "my adopted dog"),
       ("shelter", "adoption day", "harness", "vet visit", "new bed")),
    _I("Aquarium Keeping", "pets", ("aquarium keeping", "my fish tank", "planted aquariums"),
       ("filter", "guppies", "aquascape", "water test", "driftwood")),
    _I("Small Pets", "pets", ("hamsters and rabbits", "small pets", "life with a bunny"),
       ("hay", "hutch", "chew toy", "hamster wheel", "carrots")),
    # home
    _I("Solo Living Diaries", "home", ("solo living", "living alone", "a one-person household"),
       ("dinner for one", "tiny flat", "quiet evening", "single bowl", "weekend reset")),
    _I("Small Apartment Decor", "home", ("small apartment decor", "decorating a studio flat", "making a rental feel like home"),
       ("floating shelf", "rug", "fairy lights", "plants", "mirror")),
    _I("Decluttering", "home", ("decluttering", "owning less", "tidying every drawer"),
       ("donation box", "labels", "storage bins", "empty shelf", "one in one out")),
    _I("Houseplants", "home", ("houseplants", "caring for indoor plants", "my urban jungle"),
       ("monstera", "repotting", "grow light", "watering can", "propagation")),
    _I("Cleaning Routines", "home", ("cleaning routines", "sunday reset cleaning", "satisfying cleaning"),
       ("spray bottle", "microfibre cloth", "mop", "laundry", "fresh sheets")),
    _I("Cozy Home Evenings", "home", ("cozy evenings in", "hygge nights at home", "candles and blankets"),
       ("candle", "knitted blanket", "tea", "book", "warm lamp")),
    # outdoors
    _I("Wild Camping", "outdoors", ("wild camping", "sleeping under the stars", "tent nights in the wild"),
       ("tent", "sleeping bag", "camp stove", "stars", "campfire")),
    _I("Alpine Hiking", "outdoors", ("alpine hiking", "mountain passes", "hut-to-hut treks"),
       ("summit", "trekking poles", "mountain hut", "glacier", "switchback")),
    _I("Birdwatching", "outdoors", ("birdwatching", "spotting birds", "early-morning birding"),
       ("binoculars", "field guide", "heron", "bird call", "hide")),
    _I("Kayaking", "outdoors", ("kayaking", "paddling on the lake", "river trips by kayak"),
       ("paddle", "dry bag", "life vest", "rapids", "calm water")),
    _I("Foraging Walks", "outdoors", ("foraging", "finding wild food", "mushroom walks"),
       ("mushrooms", "wild garlic", "basket", "berries", "woodland")),
    # productivity
    _I("Exam Season Study", "productivity", ("exam season", "revising for finals", "study marathons"),
       ("flashcards", "past papers", "library", "highlighters", "timetable")),
    _I("Bullet Journaling", "productivity", ("bullet journaling", "planning on paper", "my journal spreads"),
       ("dot grid", "habit tracker", "washi tape", "monthly spread", "fineliner")),
    _I("Remote Work Routines", "productivity", ("remote work", "working from home", "staying focused at home"),
       ("standing desk", "video call", "to-do list", "lunch break", "focus timer")),
    _I("Language Learning", "productivity", ("learning a language", "daily language practice", "studying japanese"),
       ("vocabulary", "streak", "grammar", "flashcards", "conversation partner")),
    _I("Early Morning Routines", "productivity", ("5am mornings", "early-morning routines", "starting the day before sunrise"),
       ("alarm", "journaling", "cold shower", "stretching", "sunrise")),
    # coffee
    _I("Home Espresso", "coffee", ("home espresso", "pulling shots at home", "dialing in my machine"),
       ("portafilter", "tamper", "grinder", "crema", "shot time")),
    _I("Latte Art", "coffee", ("latte art", "pouring hearts and tulips", "milk texture practice"),
       ("milk pitcher", "rosetta", "microfoam", "tulip", "wobble")),
    _I("Cafe Hopping", "coffee", ("cafe hopping", "visiting new coffee shops", "coffee shop crawls"),
       ("window seat", "flat white", "pastry", "menu board", "neighbourhood cafe")),
    _I("Pour-Over Brewing", "coffee", ("pour-over coffee", "slow brewing by hand", "filter coffee rituals"),
       ("gooseneck kettle", "paper filter", "bloom", "scale", "light roast")),
    _I("Iced Coffee Summers", "coffee", ("iced coffee", "cold brew season", "summer coffee drinks"),
       ("cold brew", "ice cubes", "glass jar", "sweet cream", "straw")),
    # commute
    _I("Bike Commuting", "commute", ("cycling to work", "bike commuting", "two wheels through the city"),
       ("bike lane", "helmet", "panniers", "traffic light", "rain cape")),
    _I("Subway Stories", "commute", ("subway rides", "life on the metro", "my train commute"),
       ("platform", "rush hour", "transfer", "line map", "metro card")),
    _I("City Night Walks", "commute", ("city walks at night", "wandering downtown after dark", "night life on foot"),
       ("neon signs", "late bus", "night market", "empty streets", "skyline")),
    _I("Car-Free Living", "commute", ("living without a car", "car-free life", "getting around by transit"),
       ("bus pass", "cargo bike", "walking", "tram", "grocery run")),
    _I("Electric Scooters", "commute", ("electric scooters", "e-scooter rides", "scooting to the office"),
       ("scooter", "charging", "kickstand", "sidewalk", "range")),
)
INTEREST_IDS: tuple[str, ...] = tuple(i.name for i in INTERESTS)
BY_NAME: dict[str, Interest] = {i.name: i for i in INTERESTS}

#: title styles: {p} a phrasing, {d}/{e} details, {n} a small number
TITLE_STYLES: tuple[str, ...] = (
    "{P}: {d} edition", "{n} things about {p} nobody told me", "{D} + {e} = my week", "is {p} worth it? ({d})",
    "{P} diary #{n}", "ok but {d}...", "{P}, explained with {d}", "trying {p} for {n} days",
    "the {d} I can't stop using", "{D} check", "what {p} looks like for me", "{P} | {d} & {e}",
)
#: note styles per tone ({p} phrasing, {d} {e} {f} details, {n} {m} numbers)
NOTE_STYLES: dict[str, tuple[str, ...]] = {
    "humorous": ("so apparently {p} means tripping over the {d} twice a day. the {e} judged me. lol",
                 "me: I'll keep it simple. also me: buys a {d}, a {e} AND a {f}. {p} has ruined me haha",
                 "nobody warned me that {p} would turn me into a {d} goblin. send help (and {e})"),
    "informative": ("Notes on {p}: the {d} matters most, then the {e}. Budget about {n} minutes; skip the {f}.",
                    "Quick facts from {n} weeks of {p}: {d} first, {e} second, {f} only if needed.",
                    "{P} basics: {d}, {e}, {f}. I compared {m} options; numbers in the comments."),
    "emotional": ("I never thought {p} would mean this much to me. The {d} reminds me of home, and the {e} of her.",
                  "Some days are heavy. {P} got me through: the {d}, the {e}, a little hope.",
                  "Found my old {d} today and cried a bit. {P} has been part of me for {n} years."),
    "energetic": ("{P} day!!! {d}, {e}, go go go! {n} rounds and no stopping!",
                  "WAKE UP it's {p} time - {d} ready, {e} ready, let's do this!!",
                  "New record with the {d}! {P} is on fire this week, who's in?!"),
    "calm": ("a slow morning with {p}. the {d}, some quiet, the {e}. nothing else needed.",
             "{P} at my own pace: the {d} by the window, soft light, no rush.",
             "breathing out. {p}, the {d}, the {e}, and an hour of stillness."),
    "luxurious": ("Treated myself: {p} done properly. The {d} is exquisite, the {e} impeccable.",
                  "{P}, elevated: a hand-finished {d} and the finest {e} I have tried.",
                  "Only the best for {p} - the {d} was worth every cent, the {e} pure indulgence."),
}
#: narrative framings appended to a note ({d}, {e} details, {n} a number)
NARRATIVE_STYLES: dict[str, tuple[str, ...]] = {
    "tutorial": ("How I do it: 1) {d} 2) {e} 3) repeat.", "Step one, the {d}; step two, the {e}.",
                 "Beginner tip: start with the {d}, add the {e} later."),
    "story": ("It started with a {d} and ended with a {e}.", "Long story short: the {d} broke, the {e} saved the day.",
              "That was the week the {d} changed everything."),
    "listicle": ("My top {n}: {d}, {e}, and one surprise.", "Ranked: 1. {d} 2. {e} 3. everything else.",
                 "{n} picks, {d} first."),
    "review": ("Verdict after {n} weeks: {d} yes, {e} meh. {m}/10.", "Pros: the {d}. Cons: the {e}. Rating {m}/10.",
               "Honest take: the {d} earns its place, the {e} does not."),
    "montage": ("just clips: {d}, {e}, music on.", "{d}. {e}. cut. repeat.", "a few shots of the {d} and the {e}."),
    "vlog": ("Come along: morning {d}, afternoon {e}.", "Today's vlog: {d} at breakfast, {e} by night.",
             "A day with me: the {d}, then the {e}, then bed."),
}
#: notes about nothing in particular (noise a real history is full of)
NOISE_NOTES: tuple[tuple[str, str], ...] = (
    ("monday again", "why is it always raining on mondays"),
    ("random thought", "does anyone else forget what they came into a room for"),
    ("giveaway!!", "like and share to win, winners picked friday"),
    ("happy birthday to my sister", "she is the best, love you"),
    ("lost my keys", "third time this month, I need a hook by the door"),
    ("which one?", "left or right, comment below"),
    ("throwback", "found this old picture from school"),
    ("can't sleep", "it is 3am and I am scrolling again"),
    ("weather today", "sunny then stormy then sunny, make up your mind"),
    ("new profile pic", "what do you think"),
    ("poll", "tea or coffee, settle this once and for all"),
    ("update", "sorry for not posting, life got busy"),
    ("meme dump", "sending these to the group chat"),
    ("quote of the day", "be kind, everyone is fighting a battle you know nothing about"),
    ("traffic", "stuck for an hour, the radio is my only friend"),
)
