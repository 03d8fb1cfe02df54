"""The strict claim check: ONE gate for every generated sentence shown to people (LLM explanations, item
descriptions) and for the training data of the explainer (finetune's rejection sampling).

A sentence about a pick may state only what the pick's evidence (retrieval/evidence.py) and catalog facts hold:
- every genre word, compounds and hyphenations included ("comedy-drama", "sci-fi action", "rom-com"), is a genre
  of the pick; every year or decade is its year (or the years asked for); every title is the pick's or one its
  evidence names; every number is the evidence's, percentages and "a of b" pairs included (agent/llm/grounding.py
  finds these mentions);
- every other word is in a closed vocabulary of words about viewers, ratings, popularity and the request
  (agent/llm/claims.toml), or in a description the catalog itself holds: so a plot, a person, a place or an
  award, which no evidence states, cannot pass; praise needs a top-decile rating, "popular" a top-decile audience;
- it has 12–40 words, no generic phrase, no markup, and cites at least one piece of the evidence;
- every true fact is stated in its role (agent/llm/claim_roles.py): a number with the words of what it counts (the
  catalog size is no viewer count), "it is <Title>" only of the pick, no title invented around a real one; and a
  request reference ("you asked for") attaches only to what the request holds (agent/llm/claim_requests.py).

`ClaimVerdict.cited` says which pieces it uses and `personal` whether one of them is personal to the user or the
request (a liked or anchor title, the viewer's history, something asked for): what `marquee bench explain` counts.
"""
from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from agent.llm.claim_form import WordForms, number_problems
from agent.llm.claim_meaning import meaning_problems
from agent.llm.claim_style import style_problems
from agent.llm.claim_requests import RequestCheck
from agent.llm.claim_roles import RoleCheck, mark_titles
from agent.llm.claim_words import (NGRAM, NUMBER, ClaimWords, bare_title, generic_phrases, ngrams, number_value,
                                   shared_ngram, word_count, words_of)
from agent.llm.grounding import GroundingChecker, _mask_titles, canonical_genre
from retrieval.catalog.schema import Catalog, Item
from retrieval.evidence import PERSONAL_RELATIONS, Evidence

# the word helpers live in agent/llm/claim_words.py; importers use them from here
__all__ = ["MAX_WORDS", "MIN_WORDS", "NGRAM", "ClaimChecker", "ClaimVerdict", "ClaimWords", "bare_title",
           "generic_phrases", "ngrams", "shared_ngram", "word_count", "words_of"]

MIN_WORDS = 12
MAX_WORDS = 40
_WORD = re.compile(r"(?<![\w'])[A-Za-z][A-Za-z'\-]*")  # letters glued to a number ("1990s", "3rd") are the number's
_MARKUP = re.compile(r"[<>`\[\]{}$\\|*_~^]|https?:|www\.|!\[|&[a-z]+;|#(?!\d)")
_SUITABILITY = re.compile(r"\bgood for\b", re.IGNORECASE)
_SENTENCE_START = re.compile(r"(?:^|[.!?:;]\s+|[\"“(]\s*)$")

_LIKE_VERBS = ("liked", "loved", "enjoyed", "adored", "like", "love", "enjoy")
_USER_VERB = re.compile(r"\byou(?:'ve| have| had)?\s+(?:also\s+|really\s+)?(rated|liked|loved|enjoyed|adored|saw|watched|"
                        r"like|love|enjoy|want(?:ed)? more like|asked for more like|want(?:ed)? more of|"
                        r"asked for something similar to)\b")


# the viewer's own rating of the pick, which no evidence holds: "your rating", "you rate it 3.8", "you gave it 4"
# ("you rated Heat highly", about another title the viewer liked, is a connection, not this)
_OWN_RATING = re.compile(r"\b(?:your (?:own )?(?:rating|score|vote|grade)|you(?:'ve|'d| have| had| would| will|"
                         r" might)? (?:gave|give|gives|scored|score|rated|rate|rates|graded|grade|voted) (?:it|this"
                         r"(?: film| one| movie| title)?)\b(?! highly))")
# "you're in the top 224", "you have 575 viewers": what the viewer is or has is no fact the evidence holds (what they
# asked for, liked or rated is judged by the request and user rules)
VIEWER_STATE = re.compile(r"\byou(?:'re|'ve| are| have| were| had)\s+(?!asked\b|requested\b|named\b|mentioned\b|"
                          r"rated\b|liked\b|loved\b|enjoyed\b|adored\b|seen\b|watched\b|chosen\b|set\b|"
                          r"wanted\b|been asking\b|after\b|looking for\b|also\b|already\b|said\b|not been shown\b)")
_PRONOUNS = {"it", "its", "this", "that", "they", "them", "you", "one"}
_AFTER_TITLE = re.compile(r"(?:\s*\(\d{4}\))?\s*,?\s*(?:which|that|a film|one|a title)\s+(?:[a-z]+\s+){0,2}?you\s+"
                          r"(?:have\s+|had\s+|also\s+)?(rated|liked|loved|enjoyed|adored|saw|watched|named|mentioned|"
                          r"asked for)\b")


@dataclass(frozen=True)
class ClaimVerdict:
    ok: bool
    problems: tuple[str, ...] = ()
    cited: tuple[str, ...] = ()  # pieces of evidence used: connection, shared, request, rating, popularity
    personal: bool = False  # one of them is personal to the user or the request
    generic: tuple[str, ...] = ()  # generic phrases found
    words: int = 0


class ClaimChecker(GroundingChecker):
    """`check_claims(text, item, evidence)`: the strict check of one generated sentence about one pick."""

    def __init__(self, catalog: Catalog | Iterable[Item], min_title_chars: int = 4, words: ClaimWords | None = None):
        super().__init__(catalog, min_title_chars)
        self.words = words or ClaimWords.load()
        self._by_label = {it.label: it for it in self._items}
        implied = sorted(self.words.genre_words, key=len, reverse=True)
        self._implied_re = re.compile(r"(?<![\w])(" + "|".join(map(re.escape, implied)) + r")(?![\w])",
                                      re.IGNORECASE)
        self.roles = RoleCheck(self, self.words, self._implied_re)
        self.requests = RequestCheck(self, self.words, self._implied_re)

    def item_by_label(self, label: str) -> Item | None:
        return self._by_label.get(label)

    # ------------------------------------------------------------------ the check
    def check_claims(self, text: str, item: Item, evidence: Evidence, asked_genres: Sequence[str] = (),
                     min_words: int = MIN_WORDS, max_words: int = MAX_WORDS) -> ClaimVerdict:
        """Every claim of `text` must be supported by `item`'s catalog facts or its `evidence`; `asked_genres`
        (the request's genres, catalog names) may be named only in a contrast ("not the horror you asked for")."""
        text = " ".join(text.replace("’", "'").replace("“", '"').replace("”", '"').split())
        problems: list[str] = []
        count = word_count(text)
        if not min_words <= count <= max_words:
            problems.append(f"{count} words (a sentence needs {min_words}-{max_words})")
        titled = self._titled(item, evidence)
        s = evidence.satisfies
        asked = list(dict.fromkeys([*asked_genres, *s.genres, *s.avoided_genres]))
        years = " ".join(str(y) for y in (s.year_min, s.year_max) if y is not None)
        base = self.check(text, item, allowed_text=" ".join(asked) + (" " + years if years else ""),
                          allowed_items=titled[1:], evidence=evidence)
        problems += base.problems
        masked = _mask_titles(text, titled)
        problems += self._implied_genres(masked, item, asked)
        problems += number_problems(masked, item, evidence)
        forms = self.word_forms(item, evidence)
        problems += [f"writes {w!r} in a form no title or sentence uses" for w in forms.miswritten(text)]
        pieces = forms.title_pieces(text)
        if pieces:
            problems.append(f"writes part of a title without the rest of it: {' '.join(pieces)!r}")
        markup = _MARKUP.search(masked)
        if markup:
            problems.append(f"markup or a link in the text: {markup.group(0)!r}")
        generic = generic_phrases(masked, self.words)  # "Around the World in 80 Days" is a title, not a phrase
        problems += [f"generic phrase {p!r}" for p in generic]
        problems += self._unsupported_words(masked, item, evidence)
        marked = mark_titles(text, item, titled[1:])  # the pick and each evidence title told apart
        problems += self.requests.problems(masked, marked, item, evidence, asked, titled[1:])
        problems += self.roles.problems(masked, marked, item, evidence, titled[1:])
        problems += self._unattributed(text, masked, evidence)
        problems += self._user_claims(text, marked, item, evidence)
        problems += meaning_problems(marked, item, evidence)
        problems += style_problems(marked, evidence)
        problems += self._repeats(text)
        cited = self.cited(text, masked, evidence, titled)
        if not cited:
            problems.append("cites none of the pick's evidence")
        personal = self._personal(text, masked, evidence, cited)
        problems = list(dict.fromkeys(problems))
        return ClaimVerdict(ok=not problems, problems=tuple(problems), cited=cited, personal=personal,
                            generic=generic, words=count)

    def _titled(self, item: Item, evidence: Evidence) -> list[Item]:
        """The pick, then the catalog items of the titles its evidence names."""
        return [item] + [self._by_label[label] for _, label in evidence.titles() if label in self._by_label]

    def request_problems(self, text: str, item: Item, evidence: Evidence) -> list[str]:
        """The request rules alone (agent/llm/claim_requests.py) on `text`, with the request's genres from the
        evidence: what the claim-constrained decoder asks while a sentence is written (agent/llm/constrained.py)."""
        titled = self._titled(item, evidence)
        s = evidence.satisfies
        asked = list(dict.fromkeys([*s.genres, *s.avoided_genres]))
        return self.requests.problems(_mask_titles(text, titled), mark_titles(text, item, titled[1:]), item, evidence,
                                      asked, titled[1:])

    # ------------------------------------------------------------------ parts
    def _implied_genres(self, masked: str, item: Item, asked: Sequence[str]) -> list[str]:
        """Words that claim a genre without naming it ("rom-com", "whodunit", "funny"): the pick must have it."""
        has = {canonical_genre(g) for g in item.genres}
        contrast_ok = {canonical_genre(g) for g in asked}
        problems = []
        for sentence in re.split(r"(?<=[.!?;])\s+", masked):
            contrast = re.search(r"\b(not|no|without|instead|rather than|but|isn't|avoid\w*|skip\w*)\b", sentence,
                                 re.IGNORECASE)
            for m in self._implied_re.finditer(sentence):
                missing = {canonical_genre(g) for g in self.words.genre_words[m.group(1).lower()]} - has
                if contrast:
                    missing -= contrast_ok
                if missing:
                    problems.append(f"{m.group(1)!r} claims {', '.join(sorted(missing))}, not a genre of {item.label}")
        return problems

    def _unattributed(self, text: str, masked: str, evidence: Evidence) -> list[str]:
        """A connection's counts belong to its title: "18 of its 23 fans" needs the title those fans loved."""
        numbers = {number_value(m.group(1)) for m in NUMBER.finditer(masked)}
        low = text.lower()
        named = [c for c in evidence.connections if c.title.lower() in low or bare_title(c.title).lower() in low]
        # a number that belongs to a named title's counts is that title's, even if another connection has it too
        numbers -= {str(n) for c in named for n in (c.also, c.fans, c.percent)}
        problems = []
        for c in evidence.connections:
            stated = {str(c.also), str(c.fans)} <= numbers or (str(c.percent) in numbers and f"{c.percent}%" in text)
            if stated and c not in named:
                problems.append(f"states the counts of the fans of {c.title} without naming it")
        return problems

    def _user_claims(self, text: str, marked: str, item: Item, evidence: Evidence) -> list[str]:
        """What the viewer did is what the evidence says: a title "you rated / liked / loved" is one of their own
        connections (never the pick itself), "more like X" an anchor they named, "you mentioned X" a title they
        named; the viewer's own rating of the pick is never known; "like X, it is G" needs X to be G too."""
        relation = {}
        for c in evidence.connections:
            relation[c.title.lower()] = relation[bare_title(c.title).lower()] = c.relation
        named = {t.lower() for s in evidence.shared_genres for t in (s.title, bare_title(s.title))}
        own = {item.label.lower(), item.title.lower()}
        low = text.lower()
        problems = []
        if _OWN_RATING.search(marked.lower()):  # titles marked: "you rated It's a Wonderful Life" rates no pick
            problems.append("states the viewer's own rating of the pick, which the evidence does not hold")
        state = VIEWER_STATE.search(low)
        if state:
            problems.append(f"says what you are or have ({low[state.start():state.end() + 20].strip()!r}…), which "
                            "the evidence does not hold")
        for clause in re.split(r"[.;:!?]|,\s*(?:and|but|while)\b", low):
            verb = _USER_VERB.search(clause)
            if verb:
                after = clause[verb.end():]
                if any(t in after for t in own):
                    problems.append(f"says you {verb.group(1)} {item.label} itself")
                for title, rel in relation.items():
                    if title not in after:
                        continue
                    if rel not in PERSONAL_RELATIONS:
                        problems.append(f"says you {verb.group(1)} {title}, which you did not name")
                    elif re.search(r"more like|similar to|more of", verb.group(0)) and rel != "anchor":
                        problems.append(f"says you asked for more like {title}, which you did not")
        titles = [(t, "own") for t in own] + [(t, rel) for t, rel in relation.items()] + [(t, "liked") for t in named]
        for title, rel in titles:
            for m in re.finditer(re.escape(title), low):
                tail = _AFTER_TITLE.match(low, m.end())
                if not tail:
                    continue
                verb = tail.group(1)
                if rel == "own":
                    problems.append(f"says you {verb} {item.label} itself")
                elif rel not in PERSONAL_RELATIONS:
                    problems.append(f"says you {verb} {title}, which you did not name")
                elif verb in ("named", "mentioned", "asked for") and rel == "history":
                    problems.append(f"says you {verb} {title}, which comes from your history, not the request")
        problems += self._likeness(low, item, evidence)
        return list(dict.fromkeys(problems))

    def _likeness(self, low: str, item: Item, evidence: Evidence) -> list[str]:
        """"Like X, it is a comedy" / "X …, and this film shares its comedy": the genres said to be shared must be
        genres of the pick and of the titles the sentence names."""
        problems = []
        others = [it for it in self._items if it.label in {t for _, t in evidence.titles()}]
        mine = {canonical_genre(g) for g in item.genres}
        for sentence in re.split(r"(?<=[.!?;])\s+", low):
            named = [o for o in others if o.label.lower() in sentence or o.title.lower() in sentence]
            if not named:
                continue
            # "its fans also loved this drama" says what the fans did, not that the titles share drama
            cue = re.search(r"\b(?:like|as with|just like|similar to|shar(?:e|es|ed|ing)|same|also(?!\s+(?:loved|liked|"
                            r"enjoyed|adored|watched|rated|saw)\b))\b", sentence)
            if not cue:
                continue
            said = set(self.mentions(_mask_titles(sentence[cue.start():], [*named, item])).genres)
            theirs = {canonical_genre(g) for o in named for g in o.genres}
            wrong = said - (mine & theirs)
            if wrong:
                problems.append(f"says {', '.join(o.label for o in named)} and the pick share "
                                f"{', '.join(sorted(wrong))}")
        return problems

    @staticmethod
    def _repeats(text: str) -> list[str]:
        """A sentence that says the same thing twice ("and you loved both, and you loved both") is no sentence."""
        words = [w for w in words_of(text) if not w[0].isdigit()]
        seen: set[tuple[str, ...]] = set()
        for i in range(len(words) - 2):
            gram = tuple(words[i:i + 3])
            if gram in seen:
                return [f"repeats itself: {' '.join(gram)!r}"]
            seen.add(gram)
        # "comedy, comedy" lists one word twice; "behind it, it averages" is grammar
        listed = [m for m in re.finditer(r"\b(\w+), \1\b", text.lower()) if m.group(1) not in _PRONOUNS]
        return [f"repeats itself: {listed[0].group(0)!r}"] if listed else []

    def word_forms(self, item: Item, evidence: Evidence) -> WordForms:
        """How the words of a sentence about `item` may be written (agent/llm/claim_form.py)."""
        titles = [it.title for it in self._titled(item, evidence)] + [label for _, label in evidence.titles()]
        return WordForms.of(titles, self._allowed_words(item, evidence, titles=False)
                            | set(self._genre_word) | set(self.words.genre_words))

    def _allowed_words(self, item: Item, evidence: Evidence, titles: bool = True) -> set[str]:
        w = self.words
        allowed = set(w.vocabulary)
        k, s = evidence.catalog, evidence.satisfies
        if k is not None and k.top_rated:
            allowed |= w.top_rated
        if k is not None and k.most_watched:
            allowed |= w.most_watched
        if s.audience_genres:
            allowed |= w.audience
        if s.mood_genres:
            allowed |= {part for mood in s.moods for part in re.split(r"[\s\-]+", mood.lower())}
        for it in self._titled(item, evidence) if titles else ():
            # "Marvin's Room" allows "marvin" (words are compared without a possessive 's)
            allowed |= {re.sub(r"'s$|'$", "", x.lower()) for x in _WORD.findall(it.title) for x in x.split("-")}
        if item.description and not item.description_generated:  # plot words only from the catalog's own text
            allowed |= {x.lower() for x in _WORD.findall(item.description) for x in x.split("-")}
        return allowed

    def vocabulary(self, item: Item, evidence: Evidence) -> tuple[frozenset[str], frozenset[str]]:
        """(every word a sentence about `item` may use, the genre words among them): what `_unsupported_words`
        accepts, with genre words narrowed to the pick's own genres (a genre it lacks is rejected by the genre
        checks). Whole hyphenated words ("sci-fi", "rom-com") are listed, multi-word ones ("family film") not: their
        parts alone are no genre words. The claim-constrained decoder (agent/llm/constrained.py) writes only these words."""
        has = {canonical_genre(g) for g in item.genres}
        genre = {w for w, canon in self._genre_word.items() if canon in has}
        genre |= {w for w, names in self.words.genre_words.items() if {canonical_genre(g) for g in names} <= has}
        genre = {w for w in genre if " " not in w}  # "family film": its parts alone are not genre words
        return frozenset(self._allowed_words(item, evidence) | genre), frozenset(genre)

    def _unsupported_words(self, masked: str, item: Item, evidence: Evidence) -> list[str]:
        """Words outside the vocabulary, genre words and the pick's own texts: plots, people, places, awards."""
        allowed = self._allowed_words(item, evidence)
        genre_words = set(self._genre_word) | set(self.words.genre_words)
        blank = lambda m: " " * len(m.group(0))  # noqa: E731  (keeps the offsets of `masked`)
        masked = re.sub(r"this film", blank, masked)
        masked = _SUITABILITY.sub(blank, masked)  # "good for a family evening" says who it suits, not how good it is
        low = masked.lower()
        for phrase in sorted(genre_words, key=len, reverse=True):
            if " " in phrase:  # multi-word genre words ("science fiction") are checked as genres, not words
                low = re.sub(r"(?<!\w)" + re.escape(phrase) + r"(?!\w)", blank, low)
        problems: list[str] = []
        names: list[str] = []
        for m in _WORD.finditer(masked):
            raw = m.group(0).strip("'-")
            word = raw.lower()
            if not word or low[m.start():m.end()].strip() == "":
                continue
            word = re.sub(r"'s$|'$", "", word)
            parts = [p for p in word.split("-") if p]
            # a whole listed word ("best-known" for a most-watched pick) passes though a part alone ("best") would not
            if word in allowed or word in genre_words or all(p in allowed or p in genre_words for p in parts):
                continue
            if word in self.words.awards or any(p in self.words.awards for p in parts):
                problems.append(f"award claim {raw!r}: no evidence states awards")
            elif word in self.words.top_rated:
                problems.append(f"praise {raw!r} needs a top-10% rating in the evidence")
            elif word in self.words.most_watched:
                problems.append(f"{raw!r} needs a top-10% audience in the evidence")
            elif word in self.words.audience:
                problems.append(f"{raw!r} is about the audience, which the request did not name")
            elif raw[:1].isupper() and not _SENTENCE_START.search(masked[:m.start()]):
                names.append(raw)
            else:
                problems.append(f"unsupported word {raw!r} (a plot, person or fact the evidence does not hold)")
        if names:
            problems.append(f"names someone or something not in the evidence: {' '.join(dict.fromkeys(names))!r}")
        return problems

    # ------------------------------------------------------------------ what it cites
    def citations(self, text: str, item: Item, evidence: Evidence) -> tuple[tuple[str, ...], bool]:
        """(the kinds of evidence `text` states, whether one is personal): `check_claims`'s `cited` and `personal`
        without the rest of the check."""
        text = " ".join(text.replace("’", "'").replace("“", '"').replace("”", '"').split())
        titled = self._titled(item, evidence)
        masked = _mask_titles(text, titled)
        cited = self.cited(text, masked, evidence, titled)
        return cited, self._personal(text, masked, evidence, cited)

    def _personal(self, text: str, masked: str, evidence: Evidence, cited: Sequence[str]) -> bool:
        return "request" in cited or "shared" in cited or any(
            c.relation in PERSONAL_RELATIONS for c in self._cited_connections(text, masked, evidence))

    def _cited_connections(self, text: str, masked: str, evidence: Evidence) -> list:
        numbers = {number_value(m.group(1)) for m in NUMBER.finditer(masked)}
        low = text.lower()
        return [c for c in evidence.connections
                if c.title.lower() in low or bare_title(c.title).lower() in low or {str(c.also), str(c.fans)} <= numbers]

    def cited(self, text: str, masked: str, evidence: Evidence, titled: Sequence[Item]) -> tuple[str, ...]:
        """The kinds of evidence `text` states."""
        low = text.lower()
        numbers = {number_value(m.group(1)) for m in NUMBER.finditer(masked)}
        kinds = []
        if self._cited_connections(text, masked, evidence):
            kinds.append("connection")
        if any(sg.title.lower() in low or bare_title(sg.title).lower() in low for sg in evidence.shared_genres):
            kinds.append("shared")
        s = evidence.satisfies
        if (s.genres or s.years or s.mood_genres or s.audience_genres or s.avoided_genres) and any(
                re.search(r"(?<![\w])" + re.escape(r) + r"(?![\w])", low) for r in self.words.request_references):
            kinds.append("request")
        k = evidence.catalog
        if k is not None:
            if k.rating_mean is not None and number_value(str(k.rating_mean)) in numbers:
                kinds.append("rating")
            words = set(words_of(low))
            if ({str(k.popularity_rank), str(k.viewers), str(k.top_percent)} & numbers
                    or (k.most_watched and words & self.words.most_watched)):
                kinds.append("popularity")
            elif k.top_rated and words & self.words.top_rated and "rating" not in kinds:
                kinds.append("rating")
        return tuple(kinds)
