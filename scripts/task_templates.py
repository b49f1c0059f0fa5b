"""Generated training examples: invented encyclopedia passages, each asked several things.

`build_task_examples.py` adds these to the hand-written examples. A prompt over a passage is
named by its instruction, not by the passage, so every passage here is asked for different
tasks (a detail of it, a list pulled out of it, its gist, a rewrite): the passage's words then
appear under every class and the instruction's words are what the classifier learns.

Everything is invented from the lists below (names are built from syllables, so no real
person, place or text is copied); `generate(seed)` is deterministic.

Labelling conventions (the ones the router needs; the tiers of these classes are the same):
* a question about one detail of the passage -> retrieval_qa;
* a request to pull out several items (a list, a table, JSON, "extract", "find all") ->
  extraction;
* a request for the gist (summarise, overview, "what is this about", and "what is X?" or
  "who was X?" when the passage is about X as a whole) -> summarization.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass, field

SYLLABLES = ("ka", "lo", "mer", "vin", "tas", "or", "el", "bran", "dor", "sil", "ha", "ri",
             "ven", "mo", "tal", "quin", "sa", "ber", "lin", "gar", "ost", "ul", "fen", "ra",
             "zel", "cor", "an", "wyn", "thal", "is", "bel", "dra", "nor", "pe", "ty", "mar")
FIRST_NAMES = ("Aldo", "Brianna", "Cyrus", "Delphine", "Emeka", "Farah", "Goran", "Hilde",
               "Ivo", "Jun", "Kalinda", "Lucien", "Mirela", "Nadim", "Odette", "Pavel",
               "Quilla", "Rasmus", "Saoirse", "Tomasz", "Ulla", "Vikram", "Wren", "Ximena",
               "Yusuf", "Zora", "Anselm", "Beatriz", "Corwin", "Dagny", "Eero", "Flavia")
NATIONALITIES = ("Chilean", "Norwegian", "Kenyan", "Canadian", "Portuguese", "Filipino",
                 "Scottish", "Uruguayan", "Finnish", "Ghanaian", "Czech", "New Zealand",
                 "Malaysian", "Irish", "Austrian", "Peruvian")
OCCUPATIONS = (("painter", "exhibitions", "paintings"), ("footballer", "clubs", "trophies"),
               ("novelist", "novels", "literary prizes"), ("chemist", "papers", "awards"),
               ("cyclist", "races", "stage wins"), ("composer", "operas", "symphonies"),
               ("politician", "offices", "elections"), ("architect", "buildings", "bridges"),
               ("chess player", "tournaments", "titles"), ("film director", "films",
                                                            "festival awards"),
               ("jazz pianist", "albums", "tours"), ("mountaineer", "expeditions", "summits"))
COUNTRIES = ("Norway", "Chile", "Kenya", "Portugal", "Scotland", "Finland", "Peru", "Austria",
             "Malaysia", "Ireland", "Uruguay", "Ghana", "the Czech Republic", "New Zealand")
MONTHS = ("January", "February", "March", "April", "May", "June", "July", "August",
          "September", "October", "November", "December")
PRODUCTS = ("bicycles", "hearing aids", "solar inverters", "board games", "kitchen knives",
            "accounting software", "sailing boats", "headphones", "garden tools", "tea",
            "insulin pumps", "printers", "snowboards", "video games")
CONCEPT_FIELDS = (("a technique in", "data compression"), ("a method in", "soil science"),
                  ("a disorder studied in", "neurology"), ("a school of", "philosophy"),
                  ("a family of algorithms in", "machine learning"),
                  ("a style of", "architecture"), ("a team sport", "played on grass"),
                  ("a dish from", "the coastal north"), ("a programming language for",
                                                     "scientific computing"),
                  ("an economic measure used in", "development studies"))
GAMES = ("festival", "tournament", "regatta", "marathon", "fair", "championship")


def _word(rng: random.Random, parts: int | None = None) -> str:
    n = parts or rng.choice((2, 2, 3))
    return "".join(rng.choice(SYLLABLES) for _ in range(n)).capitalize()


def _person(rng: random.Random) -> str:
    return f"{rng.choice(FIRST_NAMES)} {_word(rng)}"


def _date(rng: random.Random, lo: int, hi: int) -> tuple[str, int]:
    year = rng.randint(lo, hi)
    return f"{rng.randint(1, 28)} {rng.choice(MONTHS)} {year}", year


def _cite(rng: random.Random) -> str:
    return f"[{rng.randint(1, 19)}]" if rng.random() < 0.25 else ""


def _some(sentences: list[str], rng: random.Random) -> str:
    """The first sentence and most of the others: passages of varied length."""
    return " ".join([sentences[0]] + [s for s in sentences[1:] if rng.random() < 0.85])


def _series(items: list[str]) -> str:
    return items[0] if len(items) == 1 else ", ".join(items[:-1]) + " and " + items[-1]


@dataclass
class Passage:
    """An invented passage and what can be asked of it."""

    subject: str
    kind: str                       # person, place, organization, concept, event
    text: str
    details: list[str]              # questions about one detail (retrieval_qa)
    lists: list[str]                # things to pull out, plural ("the cities mentioned")
    gist: list[str] = field(default_factory=list)  # "What is X?"-style, subject-wide asks


def _person_passage(rng: random.Random) -> Passage:
    name = _person(rng)
    last = name.split()[1]
    nat = rng.choice(NATIONALITIES)
    job, works, honours = rng.choice(OCCUPATIONS)
    born, by = _date(rng, 1890, 1990)
    dies = rng.random() < 0.4
    died, dy = _date(rng, by + 40, by + 90) if dies else ("", 0)
    towns = [_word(rng) for _ in range(3)]
    titles = [f'"{_word(rng)} {_word(rng, 2)}"' for _ in range(rng.randint(2, 4))]
    n_hon = rng.randint(2, 9)
    start = by + rng.randint(17, 30)
    life = f"({born} – {died})" if dies else f"(born {born})"
    verb = "was" if dies else "is"
    sentences = [
        f"{name} {life} {verb} a {nat} {job}.{_cite(rng)}",
        f"Born in {towns[0]}, {last} moved to {towns[1]} at the age of {rng.randint(8, 16)}.",
        f"{last.capitalize()} began a professional career in {start}, and the best known of "
        f"the {works} that followed are {_series(titles)}.",
        f"Over the years {last} won {n_hon} {honours}, the first of them in {start + 3}.",
        f"In {start + rng.randint(8, 20)} {last} settled in {towns[2]}, where a street was "
        f"later named after {rng.choice(('them', 'this ' + job))}.",
        f"Critics have described the work as {rng.choice(('restless', 'precise', 'daring'))} "
        f"and {rng.choice(('generous', 'austere', 'playful'))}.{_cite(rng)}",
    ]
    if dies:
        sentences.append(f"{last} died in {towns[2]} in {dy}.")
    return Passage(
        name, "person", _some(sentences, rng),
        details=[f"when was {name} born", f"where was {last} born",
                 f"how many {honours} did {last} win", f"when did {last} start a career",
                 f"which town did {last} settle in", f"what nationality is {name}",
                 f"what was {last}'s first {works[:-1]} called"],
        lists=[f"the {works} named", "the towns mentioned", "the years mentioned",
               f"the {works} of {last}", "the places and dates"],
        gist=[f"Who is {name}?", f"Who was {name}?", f"Who is {last}?",
              f"Tell me about {name}.", f"What is {name} known for?"],
    )


def _place_passage(rng: random.Random) -> Passage:
    name = _word(rng)
    kind = rng.choice(("town", "village", "lake", "river", "valley", "island"))
    country = rng.choice(COUNTRIES)
    pop = rng.randint(300, 90000)
    founded = rng.randint(900, 1900)
    places = [_word(rng) for _ in range(3)]
    sights = rng.sample(("a 12th-century church", "a salt museum", "a ferry port",
                         "hot springs", "a ski slope", "a lighthouse", "a weekly market",
                         "an observatory", "a paper mill", "vineyards"), 3)
    sentences = [
        f"{name} is a {kind} in the {rng.choice(('north', 'south', 'east', 'west'))} of "
        f"{country}.{_cite(rng)}",
        f"It lies {rng.randint(3, 60)} kilometres from {places[0]} and had a population of "
        f"{pop:,} at the {rng.randint(2001, 2021)} census.",
        f"The first written record of {name} dates from {founded}.",
        f"It is known for {_series(sights)}.",
        f"A railway from {places[1]} reached {name} in {rng.randint(1850, 1930)} and closed "
        f"in {rng.randint(1950, 1995)}.",
        f"Its neighbours are {places[1]} and {places[2]}.",
    ]
    return Passage(
        name, "place", _some(sentences, rng),
        details=[f"where is {name}", f"what is the population of {name}",
                 f"when was {name} first recorded", f"what is {name} known for",
                 "when did the railway close", f"how far is {name} from {places[0]}"],
        lists=["the places mentioned", "the sights listed", "the years in the text",
               "the numbers in the text"],
        gist=[f"What is {name}?", f"Where is {name}?", f"Tell me about {name}.",
              f"What is {name} like?"],
    )


def _organization_passage(rng: random.Random) -> Passage:
    name = f"{_word(rng)} {rng.choice(('Group', 'Works', 'AG', 'Ltd.', 'Collective', 'Labs'))}"
    founders = [_person(rng) for _ in range(rng.randint(1, 3))]
    year = rng.randint(1880, 2015)
    city = _word(rng)
    products = rng.sample(PRODUCTS, 3)
    staff = rng.randint(12, 40000)
    sentences = [
        f"{name} is a {rng.choice(NATIONALITIES)} company that makes {_series(products)}."
        f"{_cite(rng)}",
        f"It was founded in {year} by {_series(founders)} in {city}.",
        f"By {year + rng.randint(5, 10)} it employed {staff:,} people.",
        f"In {year + rng.randint(11, 30)} it bought its rival {_word(rng)} for "
        f"{rng.randint(2, 900)} million euros.",
        f"The company's headquarters moved to {_word(rng)} in {year + rng.randint(31, 40)}.",
        f"Its best-selling line, the {_word(rng)}, was launched in {year + rng.randint(1, 9)}.",
    ]
    return Passage(
        name, "organization", _some(sentences, rng),
        details=[f"who founded {name}", f"when was {name} founded",
                 f"how many people did {name} employ", f"where is {name} based",
                 f"what did {name} buy", f"what does {name} make"],
        lists=["the founders", "the products", "the people named", "the years and events",
               "the cities mentioned"],
        gist=[f"What is {name}?", f"What does {name} do?", f"Tell me about {name}."],
    )


def _concept_passage(rng: random.Random) -> Passage:
    name = _word(rng, 3).lower() if rng.random() < 0.5 else _word(rng)
    what, area = rng.choice(CONCEPT_FIELDS)
    inventor = _person(rng)
    year = rng.randint(1750, 2018)
    parts = [_word(rng).lower() for _ in range(rng.randint(3, 5))]
    uses = rng.sample(("hospitals", "farming", "shipping", "schools", "banks", "weather "
                       "forecasting", "video streaming", "mining", "music"), 2)
    sentences = [
        f"{name.capitalize()} is {what} {area}.{_cite(rng)}",
        f"It was first described by {inventor} in {year}.",
        f"It has {len(parts)} main parts: {_series(parts)}.",
        f"Today it is used in {_series(uses)}.",
        f"Its critics say it is {rng.choice(('slow', 'costly', 'hard to learn'))}, while "
        f"supporters point to {rng.choice(('its accuracy', 'its low cost', 'its safety'))}.",
        f"A variant called {_word(rng).lower()} appeared in {year + rng.randint(5, 40)}.",
    ]
    return Passage(
        name, "concept", _some(sentences, rng),
        details=[f"who first described {name}", f"when was {name} first described",
                 f"how many parts does {name} have", f"where is {name} used today",
                 f"what do critics say about {name}"],
        lists=["the main parts", "the uses mentioned", "the people named",
               "the criticisms and benefits"],
        gist=[f"What is {name}?", f"What is {name} used for?", f"Explain {name}.",
              f"What does {name} mean?"],
    )


def _event_passage(rng: random.Random) -> Passage:
    town = _word(rng)
    game = rng.choice(GAMES)
    name = f"the {town} {game.capitalize()}"
    first = rng.randint(1850, 2005)
    winners = [(_person(rng), rng.randint(first + 1, 2023)) for _ in range(rng.randint(2, 4))]
    sentences = [
        f"{name[0].upper() + name[1:]} is an annual {game} held in {town} every "
        f"{rng.choice(MONTHS)}.{_cite(rng)}",
        f"It was first held in {first} and drew {rng.randint(40, 900)} entrants that year.",
        "Past winners include " + _series([f"{p} ({y})" for p, y in winners]) + ".",
        f"It was cancelled in {rng.randint(1939, 1945)} and again in 2020.",
        f"Since {rng.randint(1990, 2015)} it has been broadcast on national television.",
        f"The prize is a {rng.choice(('silver cup', 'glass bowl', 'carved oar'))} and "
        f"{rng.randint(1, 50)},000 euros.",
    ]
    return Passage(
        name, "event", _some(sentences, rng),
        details=[f"when was {name} first held", f"who won {name} in {winners[0][1]}",
                 f"what is the prize of {name}", f"when was {name} cancelled",
                 f"how many entrants were there in {first}", f"where is {name} held"],
        lists=["the winners and their years", "the past winners", "the years mentioned",
               "the prizes"],
        gist=[f"What is {name}?", f"Tell me about {name}.", f"What happens at {name}?"],
    )


MAKERS: tuple[Callable[[random.Random], Passage], ...] = (
    _person_passage, _place_passage, _organization_passage, _concept_passage, _event_passage)

DETAIL_FRAMES = (
    "{Q}?", "{Q}?", "Given this paragraph about {S}, {q}?", "Given a reference text about {S}, "
    "tell me {q}.", "Based on the reference text, {q}?", "According to the passage, {q}?",
    "From the text, {q}?", "Using the passage provided, {q}?", "Based on this paragraph, {q}?",
    "Given the text below, {q}?", "{Q}, according to the text?", "{Q}? Use the passage.",
    "Read the passage and answer: {q}?", "In the text below, {q}?", "From this passage, "
    "tell me {q}.", "Given this text, please answer {q}.", "Here is some text about {S}. "
    "{Q}?", "Using this text, answer the question: {q}?", "From the paragraph, {q}?",
    "Answer based only on the context: {q}?", "{Q}? Answer in one sentence from the text.",
    "Considering the passage, {q}?", "Tell me {q}, based on the text.",
)
YES_NO = (
    "Does the passage say {q}?", "Is it true, according to the text, that {S} is mentioned "
    "more than once?", "Based on the text, is {S} still active today?",
    "Given this paragraph, was {S} mentioned before {Y}?",
)
LIST_FRAMES = (
    "Extract {L} from the text.", "Extract {L} from this passage, separated by commas.",
    "List {L} in the passage.", "List {L} from the text in a comma separated manner.",
    "From the passage, list {L}.", "From the text, extract {L} and put them in a bulleted list.",
    "Give me a comma separated list of {L} in this paragraph.", "Give me a bulleted list of "
    "{L} from the text.", "Identify {L} in this paragraph.", "Find all {L} in the text.",
    "Provide a list of {L} based on this article.", "Pull out {L} as a JSON array.",
    "Make a table of {L} from the passage.", "What are {L} in the passage? List them.",
    "Using the text, make a list of {L}.", "From the text provided, extract {L}. Display "
    "them one per line.", "Provide {L} from the passage in CSV format.",
    "Please extract {L} from the paragraph below in the format {{Name}} - {{Year}}.",
    "List down {L} given in the passage.", "Extract {L} mentioned, in alphabetical order.",
    "Based on the passage, provide a bulleted list of {L}.",
    "From the passage identify {L}. Display the results in comma separated format.",
    "Which are {L}? Extract them from the text.", "Create a list of {L} from this text.",
)
GIST_FRAMES = (
    "Summarize this paragraph about {S}.", "Summarize the text in two sentences.",
    "Give me a summary of this passage.", "What is this passage about?",
    "Please summarise the text below.", "TL;DR", "Provide a short summary of {S} based "
    "on the text.", "In a few sentences, describe {S} using this text.",
    "Give me a brief overview of {S} from the passage provided.", "What are the key points "
    "of this text?", "Summarize the main points in bullet points.", "Can you summarise "
    "from the text who or what {S} is?", "Explain {S} to a ten-year-old based on this "
    "passage.", "Write a one-line summary of this paragraph.", "Condense this text into a "
    "short paragraph.", "Tell me about {S} based on the text.", "Based on the following "
    "passage, summarise what is known about {S}.", "Give me a short description of {S}.",
    "Without quoting the text, describe {S} in your own words.", "Sum up this article.",
    "Briefly, what does the text say about {S}?", "Summarize this for me.",
    "What is the main idea of this paragraph?", "Give me the gist of the passage.",
    "Share some important points about {S} from the given text.", "What are the important "
    "facts about {S} in this passage?", "Give me some key information about {S} from the "
    "text.", "Please share the main takeaways of this paragraph.", "Describe {S} briefly, "
    "using the text below.", "Give me an overview of this passage in bullet points.",
)
REWRITE_FRAMES = (
    ("transformation", "Rewrite this paragraph in the past tense."),
    ("transformation", "Fix the grammar and spelling in the text below."),
    ("transformation", "Translate this passage into Spanish."),
    ("transformation", "Rewrite the text in a more formal tone."),
    ("transformation", "Change the following passage to the first person."),
    ("transformation", "Make this paragraph simpler, for language learners, same length."),
    ("transformation", "Fix the typos and grammar below."),
    ("transformation", "Proofread this paragraph and correct any mistakes."),
    ("transformation", "Convert this text to the present tense."),
    ("transformation", "Rewrite the passage for a young audience, keeping every fact."),
    ("transformation", "Paraphrase this paragraph sentence by sentence."),
    ("classification", "Classify the tone of this passage as neutral, positive or negative."),
    ("classification", "Is this text about a person, a place, an organization, a concept or "
                       "an event?"),
    ("classification", "Label this paragraph's topic: sport, science, business or culture."),
)


def _fill(frame: str, passage: Passage, q: str, rng: random.Random) -> str:
    return frame.format(S=passage.subject, q=q, Q=q[:1].upper() + q[1:],
                        Y=rng.randint(1900, 2020), L="")


def _layout(instruction: str, passage: Passage, rng: random.Random) -> str:
    """The instruction then the passage, as most prompts come; sometimes labelled."""
    roll = rng.random()
    if roll < 0.75:
        return f"{instruction}\n\n{passage.text}"
    if roll < 0.9:
        return f"{instruction}\n\nText: {passage.text}"
    broken = passage.text.replace(". ", ".\n", 1)
    return f"{instruction}\n\n{broken}"


def generate(seed: int = 15, passages: int = 160) -> list[tuple[str, str]]:
    """(task, prompt) pairs: each invented passage asked about a detail, for a list, for its
    gist and sometimes for a rewrite."""
    rng = random.Random(seed)
    out: list[tuple[str, str]] = []
    for i in range(passages):
        p = MAKERS[i % len(MAKERS)](rng)
        for q in rng.sample(p.details, 2):
            out.append(("retrieval_qa", _layout(_fill(rng.choice(DETAIL_FRAMES), p, q, rng),
                                                p, rng)))
        if rng.random() < 0.15:
            frame = rng.choice(YES_NO)
            out.append(("retrieval_qa", _layout(_fill(frame, p, rng.choice(p.details), rng),
                                                p, rng)))
        for thing in rng.sample(p.lists, 2):
            out.append(("extraction", _layout(rng.choice(LIST_FRAMES).format(L=thing), p,
                                              rng)))
        out.append(("summarization", _layout(_fill(rng.choice(GIST_FRAMES), p, "", rng), p,
                                             rng)))
        if p.gist and rng.random() < 0.6:
            out.append(("summarization", _layout(rng.choice(p.gist), p, rng)))
        if rng.random() < 0.35:
            task, frame = rng.choice(REWRITE_FRAMES)
            out.append((task, _layout(frame, p, rng)))
    return out


# Prompts without a passage: choosing among offered labels (classification) and questions
# answered from general knowledge, trivia and advice alike (qa). Categories are common
# knowledge, written here by hand.
CATEGORIES: dict[str, tuple[str, ...]] = {
    "fruit": ("apple", "mango", "pear", "plum", "kiwi", "papaya", "cherry", "lychee"),
    "vegetable": ("carrot", "leek", "spinach", "kale", "turnip", "celery", "broccoli", "okra"),
    "mammal": ("otter", "badger", "bat", "walrus", "lynx", "hedgehog", "bison", "dolphin"),
    "bird": ("heron", "finch", "osprey", "magpie", "puffin", "wren", "kestrel", "toucan"),
    "fish": ("cod", "halibut", "perch", "tuna", "pike", "sardine", "trout", "mackerel"),
    "string instrument": ("cello", "violin", "sitar", "banjo", "harp", "viola", "lute", "oud"),
    "percussion instrument": ("tabla", "snare drum", "xylophone", "cajón", "bongo",
                              "triangle", "timpani", "djembe"),
    "wind instrument": ("oboe", "flute", "bassoon", "tuba", "clarinet", "piccolo"),
    "country": ("Peru", "Norway", "Kenya", "Laos", "Chile", "Austria", "Nepal", "Ghana"),
    "city": ("Lyon", "Osaka", "Porto", "Denver", "Krakow", "Mumbai", "Quito", "Perth"),
    "programming language": ("Rust", "Kotlin", "Haskell", "Perl", "Fortran", "Elixir"),
    "database": ("PostgreSQL", "Redis", "Cassandra", "SQLite", "MongoDB", "DynamoDB"),
    "ball sport": ("tennis", "rugby", "volleyball", "cricket", "handball", "squash"),
    "winter sport": ("curling", "biathlon", "luge", "ski jumping", "bobsleigh"),
    "metal": ("copper", "zinc", "tin", "nickel", "cobalt", "titanium"),
    "gas": ("helium", "argon", "neon", "methane", "ozone", "radon"),
}
PAIRS = (("fruit", "vegetable"), ("mammal", "bird"), ("bird", "fish"), ("mammal", "fish"),
         ("string instrument", "percussion instrument"), ("string instrument",
                                                          "wind instrument"),
         ("country", "city"), ("programming language", "database"), ("ball sport",
                                                                     "winter sport"),
         ("metal", "gas"))
CHOICE_FRAMES = (
    "Which is a {a}: {x} or {y}?", "Which is a {a}? {X} or {Y}", "Is {x} a {a} or a {b}?",
    "Which of these is a {a}: {items}?", "Which of the following are {a}s and which are "
    "{b}s: {items}", "Classify each of the following as a {a} or a {b}: {items}",
    "Identify which of these is a {a} and which is a {b}: {items}.", "Tell me whether each "
    "of these is a {a} or a {b}: {items}", "Categorize the following into {a}s and {b}s: "
    "{items}", "Sort these into two groups, {a}s and {b}s: {items}.", "Separate the "
    "following into {a}s and {b}s: {items}", "Group these by whether they are a {a} or a "
    "{b}: {items}", "Which one of these is not a {a}: {items}?", "Label each as {a} or {b}."
    " {Items}", "From this list, which are {a}s? {items}", "Here are some words: {items}. "
    "Which of them are {b}s?", "Put each of these in the right category ({a} or {b}): "
    "{items}", "Is a {x} a {a}?", "Tell me which of these are {a}s: {items}.",
)
TOPICS = ("the Roman Empire", "photosynthesis", "the French Revolution", "black holes",
          "the Silk Road", "plate tectonics", "the printing press", "vaccines", "jazz",
          "the Cold War", "inflation", "the Renaissance", "volcanoes", "the immune system",
          "the Ottoman Empire", "electric cars", "the stock market", "the Moon landing",
          "climate change", "the Olympic Games", "the internet", "antibiotics", "tea")
SKILLS = ("my golf swing", "my handwriting", "my sleep", "my running pace", "my Spanish",
          "my posture", "my chess", "my public speaking", "my credit score", "my focus",
          "my swimming technique", "my cooking", "my memory", "my typing speed")
THINGS = ("a tent", "a used car", "a laptop", "running shoes", "a mattress", "a bicycle",
          "a camera", "a dog", "a house plant", "a winter coat", "a tennis racquet",
          "a coffee grinder", "a kayak", "a monitor")
PLACES = ("Portugal", "Japan", "Morocco", "Peru", "Iceland", "Vietnam", "Scotland",
          "New Zealand", "Mexico", "Norway", "Greece", "Kenya", "Chile", "Canada")
QA_FRAMES = (
    "What is {t}?", "Who invented {t}?", "Why is {t} important?", "How does {t} work?",
    "When did {t} begin?", "What caused {t}?", "Explain {t}.", "What are the main effects "
    "of {t}?", "Tell me about {t}.", "How did {t} change the world?", "What is the history "
    "of {t}?", "Name three facts about {t}.", "What do people mean by {t}?",
    "How can I improve {s}?", "What's the best way to improve {s}?", "Any tips to fix {s}?",
    "What should I look for when buying {th}?", "What factors should I consider when "
    "choosing {th}?", "How do I take care of {th}?", "Is it worth buying {th} second hand?",
    "What are the best places to visit in {p}?", "Which cities should I see on a trip to "
    "{p}?", "What is the capital of {p}?", "What language do people speak in {p}?",
    "What food is {p} famous for?", "How should I plan a week in {p}?", "What is the "
    "weather like in {p} in winter?", "Name the longest river in {p}.",
    "List the countries that border {p}.", "Who was the first president of {p}?",
    "Which team won the most football titles in {p}?", "Name some famous writers from {p}.",
    "What are the benefits of learning about {t}?", "Why do people like {t}?",
)


def generate_questions(seed: int = 16, n_choice: int = 140, n_qa: int = 180,
                       ) -> list[tuple[str, str]]:
    """(task, prompt) pairs without a passage: label choices and general questions."""
    rng = random.Random(seed)
    out: list[tuple[str, str]] = []
    for _ in range(n_choice):
        a, b = rng.choice(PAIRS)
        if rng.random() < 0.5:
            a, b = b, a
        items = rng.sample(CATEGORIES[a], 2) + rng.sample(CATEGORIES[b], 2)
        rng.shuffle(items)
        x, y = items[0], items[1]
        listed = ", ".join(items[: rng.randint(3, 4)])
        frame = rng.choice(CHOICE_FRAMES)
        out.append(("classification", frame.format(
            a=a, b=b, x=x, y=y, X=x[:1].upper() + x[1:], Y=y[:1].upper() + y[1:],
            items=listed, Items=listed[:1].upper() + listed[1:])))
    for _ in range(n_qa):
        frame = rng.choice(QA_FRAMES)
        text = frame.format(t=rng.choice(TOPICS), s=rng.choice(SKILLS), th=rng.choice(THINGS),
                            p=rng.choice(PLACES))
        if rng.random() < 0.3:
            text = text[:1].lower() + text[1:]
        out.append(("qa", text))
    return list(dict.fromkeys(out))
