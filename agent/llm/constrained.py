"""Claim-constrained decoding: while a sentence about a pick is generated, tokens that would make the claim checker
(agent/llm/claims.py) reject it are masked out of the logits, so its commonest failures cannot be written at all.

One `ClaimConstraint` per pick is built from the same data the checker reads (`ClaimChecker.vocabulary`: the words
of agent/llm/claims.toml, the pick's genre words, the words of its and its evidence's titles and of a description
the catalog holds; `Evidence.numbers`; the [generic] phrases). At each step of the generation loop
(agent/llm/generation.py) `restrict` walks the row's candidate tokens best first and keeps only those whose text,
appended to what the row has written, still
- spells words of that vocabulary (a word being written must be the start of one): no plot, person, place, award,
  praise the rating does not earn, or genre the pick lacks; a capitalised name outside the evidence is just an
  unknown word;
- spells numbers the evidence holds (thousands separators and decimals as written, ordinals and decades);
- writes each number as the start of one of the pick's statistic phrases, to its end ("79 of its 118 fans":
  agent/llm/stat_phrases.py), and ties no true fact to the wrong subject (agent/llm/claim_meaning.py: "you loved"
  only before or after a title of the viewer's, no whole group for a part of it);
- contains no markup or characters outside plain prose, completes no generic phrase and no word 3-gram the row has
  already written (the checker's "repeats itself");
and lets the row end only after a whole sentence of at least `MIN_WORDS` words that cites a piece of evidence (a
personal one, when the pick has one: a title the viewer liked, genres shared with it, something asked for).
What it cannot see (a number paired with the wrong count, a genre said to be asked for) is left to the checker.

Speed: before any of that, one vectorised mask per pick drops every token whose letters could never be part of the
pick's words (agent/llm/token_index.py: most of the 49k tokens), so the per-token checks above run on a few
candidates per step.
"""
from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field

from agent.llm.claim_form import WordForms, ends_in_copy, number_problems, pair_open
from agent.llm.claim_meaning import OBJECT_LEADS, RELATIVE_CLAUSE, meaning_problems
from agent.llm.claim_style import style_problems
from agent.llm.claim_roles import mark_titles, number_roles, role_still_open, statement_limits, unearned_praise
from agent.llm.claim_words import NUMBER, number_value
from agent.llm.claims import MAX_WORDS, MIN_WORDS, VIEWER_STATE, ClaimChecker, bare_title, generic_phrases
from agent.llm.grounding import _mask_titles
from agent.llm.stat_phrases import numbers_open, stat_phrases
from agent.llm.token_index import PROSE, shared_candidates, token_index, token_texts
from retrieval.catalog.schema import Item
from retrieval.evidence import PERSONAL_RELATIONS, Evidence

_PIECE = re.compile(r"\d[\d,.]*[A-Za-z]*|[A-Za-z][A-Za-z'\-]*|.", re.DOTALL)
_NUMBER_SUFFIXES = ("", "s", "st", "nd", "rd", "th")
_WORD_TAIL = re.compile(r"[A-Za-z0-9'\-.,]*$")  # the piece a row is still writing (a word or a number)
# punctuation glued to the next word ("it.The", "rated,4"): the checker would read other words and numbers
_GLUED = re.compile(r"(?:(?<!\d)[.,]|[;:!?)%])[A-Za-z0-9]|\d[.,][A-Za-z]|[.,;:!?]{2}|\s[.,;:!?%]")
# "you liked …": what follows must be a title the viewer named or loved (the checker's `_user_claims`)
_USER_VERB = re.compile(r"\byou(?:'ve| have| had)?\s+(?:also\s+|really\s+)?(?:rated|liked|loved|enjoyed|adored|"
                        r"saw|seen|watched|like|love|enjoy|asked for more like|want more like|wanted more like)\b")
# "Heat (1995), which you rated highly": a verb of the viewer's in a relative clause right after a title of theirs
_RELATIVE_TAIL = re.compile(r"(?:\s*\(\d{4}\))?" + RELATIVE_CLAUSE)
_VIEWER_STATE_WORD = re.compile(VIEWER_STATE.pattern + r"[a-z']+[^a-z']")
_LETTER_RUN = re.compile(r"[A-Za-z]+")
_COUNTED = re.compile(r"[\w'\-.,/%]*[A-Za-z0-9][\w'\-.,/%]*")
SAMPLED_CANDIDATES = 24  # sampling draws among the valid ones of this many best tokens (more if none is valid)
# Failing those, the search goes on down the whole vocabulary (a word of the vocabulary can always be finished
# letter by letter); only when no token at all is allowed does the row end.


def _number_forms(values: set[str]) -> set[str]:
    """How a sentence may write each number: "1682" also as "1,682"."""
    forms = set()
    for v in values:
        forms.add(v)
        if v.isdigit() and len(v) > 3:
            forms.add(f"{int(v):,}")
    return forms


def _split_number(raw: str) -> tuple[str, str]:
    """"1990s" -> ("1990", "s"): the digits and the letters after them (lower case)."""
    digits = raw.rstrip("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ")
    return digits, raw[len(digits):].lower()


def _roles(item: Item, evidence: Evidence) -> tuple[dict[str, tuple[str, ...]], dict[str, int]]:
    """(each evidence number's roles, how often each statistic other than a year may be stated)."""
    roles = number_roles(item, evidence)
    kinds: dict[str, list[str]] = {}
    for role in roles:
        kinds.setdefault(role.value, []).append(role.kind)
    return {v: tuple(k) for v, k in kinds.items()}, statement_limits(roles)


def _prefixes(words: set[str]) -> frozenset[str]:
    return frozenset(w[:n] for w in words for n in range(1, len(w) + 1))


@dataclass(frozen=True)
class ClaimConstraint:
    """What a sentence about one pick may spell (see the module docstring)."""

    words: frozenset[str]
    word_prefixes: frozenset[str]
    numbers: frozenset[str]
    number_prefixes: frozenset[str]
    owned_numbers: dict[str, tuple[str, ...]]  # a connection's count -> the titles (lower case) that must come first
    last_generic_words: frozenset[str]
    item: Item
    evidence: Evidence
    checker: ClaimChecker
    title_years: dict[str, tuple[str, ...]]  # year -> lower-case titles of the pick / its evidence from that year
    personal: bool  # the evidence holds something personal to the viewer or the request
    own_titles: tuple[str, ...]  # lower case: the titles "you liked / rated / loved …" may name
    roles: dict[str, tuple[str, ...]]  # a number of the evidence -> its roles (claim_roles.number_roles)
    statements: dict[str, int]  # how many times a statistic may be stated (once per role and owner)
    forms: WordForms  # the case each word may be written in
    titled: tuple[Item, ...]  # the pick and the catalog items its evidence names (blanked before number checks)
    phrases: tuple[str, ...] = ()  # how a number may be written (agent/llm/stat_phrases.py)
    title_texts: tuple[str, ...] = ()  # lower case: the titles and labels of `titled` (a number may start one)
    _meant: dict[str, bool] = field(default_factory=dict, compare=False, repr=False)  # `_meaning_ok` by text

    @classmethod
    def for_pick(cls, checker: ClaimChecker, item: Item, evidence: Evidence) -> "ClaimConstraint":
        words, _genre = checker.vocabulary(item, evidence)
        titled = checker._titled(item, evidence)
        others = [t for t in (checker.item_by_label(label) for _, label in evidence.titles()) if t is not None]
        # a connection's counts only once its title is written ("79 of the 118 fans of Heat"): the checker's
        # "states the counts of the fans of X without naming it"
        owned: dict[str, list[str]] = {}
        for c in evidence.connections:
            for n in {str(c.also), str(c.fans), str(c.percent)}:
                owned.setdefault(n, []).append(bare_title(c.title).lower())
        bare = evidence.model_copy(update={"connections": []})
        numbers = set(bare.numbers())
        owned = {n: titles for n, titles in owned.items() if n not in numbers}
        for it in [item, *others]:
            numbers |= set(re.findall(r"\d+", it.title))  # "2 Days in the Valley"
        forms = _number_forms(numbers) | ({str(item.year)} if item.year else set())
        owned_forms = {form: tuple(titles) for n, titles in owned.items() for form in _number_forms({n})}
        # "Title (year)": a year in brackets only right after the title it belongs to
        bracketed = {}
        for it in [item, *others]:
            if it.year:
                bracketed.setdefault(str(it.year), []).append(it.title.lower())
        last = frozenset(re.split(r"\s+", p)[-1] for p in checker.words.generic)
        own = {t.lower() for c in evidence.connections if c.relation in PERSONAL_RELATIONS
               for t in (c.title, bare_title(c.title))}
        return cls(frozenset(words), _prefixes(set(words)), frozenset(forms), _prefixes(forms),
                   owned_forms,
                   last, item, evidence, checker, {k: tuple(v) for k, v in bracketed.items()}, evidence.personal(),
                   tuple(sorted(own)), *_roles(item, evidence), checker.word_forms(item, evidence),
                   tuple(titled), stat_phrases(item, evidence),
                   tuple(t for it in titled for t in (it.title.lower(), it.label.lower())))

    # ------------------------------------------------------------------ words and numbers
    def _word_done(self, raw: str) -> bool:
        if not all(self.forms.run_ok(r) for r in _LETTER_RUN.findall(raw)):
            return False
        word = raw.strip("'-").lower()
        if not word:
            return True
        word = re.sub(r"'s$|'$", "", word)
        if word in self.words:
            return True
        parts = [p for p in word.split("-") if p]
        return bool(parts) and all(p in self.words for p in parts)

    def _word_open(self, raw: str) -> bool:
        """Whether `raw` can still grow into a word `_word_done` accepts."""
        *whole, last_run = _LETTER_RUN.findall(raw) or [""]
        if not all(self.forms.run_ok(r) for r in whole) or not (
                self.forms.run_ok(last_run) if raw[-1:] in "'-" else self.forms.run_open(last_run)):
            return False
        word = raw.lower()
        if word in self.word_prefixes:
            return True
        *done, last = word.split("-")
        if not all(self._word_done(p) for p in done if p):
            return False
        if not last:
            return True
        if "'" in last:
            stem, _, rest = last.partition("'")
            return last in self.word_prefixes or (stem in self.words and rest in ("", "s"))
        return last in self.word_prefixes

    def _years_here(self, before: str) -> list[str]:
        """The years that may follow `before`: a title's own, right after "Title (" (none elsewhere)."""
        head = before.rstrip().lower()
        if not head.endswith("("):
            return []
        head = head[:-1].rstrip()
        return [year for year, titles in self.title_years.items() if any(head.endswith(t) for t in titles)]

    def _known(self, digits: str, before: str) -> bool:
        """A number of the evidence (a connection's count once its title is written), or the year of the title
        written just before "(" (`before`: the text ahead); in brackets after a title, only that title's year."""
        years = self._years_here(before)
        if years or (before.rstrip().endswith("(") and re.fullmatch(r"(?:1[89]|20)\d\d", digits)):
            return digits in years
        if digits in self.numbers:
            return True
        low = before.lower()
        return any(title in low for title in self.owned_numbers.get(digits, ()))

    def _number_done(self, raw: str, before: str) -> bool:
        digits, suffix = _split_number(raw)
        return suffix in _NUMBER_SUFFIXES and self._known(digits.rstrip(".,"), before)

    def _number_open(self, raw: str, before: str) -> bool:
        digits, suffix = _split_number(raw)
        if before.rstrip().endswith("(") and re.fullmatch(r"(?:1[89]|20)\d\d", digits):
            return digits in self._years_here(before)  # "this film (1995": a year in brackets only after its title
        if suffix:
            return any(s.startswith(suffix) for s in _NUMBER_SUFFIXES if s) and self._known(digits, before)
        if self._known(digits.rstrip(".,"), before):
            return True
        years = self._years_here(before)
        if years:
            return any(year.startswith(digits) for year in years)
        low = before.lower()
        return digits in self.number_prefixes or any(
            form.startswith(digits) and any(t in low for t in titles) for form, titles in self.owned_numbers.items())

    def _pieces_ok(self, text: str, start: int) -> bool:
        """Whether the pieces of `text` from `start` on are (or, the last one, may become) words and numbers of the
        pick."""
        segment = text[start:]
        pieces = list(_PIECE.finditer(segment))
        for n, m in enumerate(pieces):
            raw = m.group(0)
            still_open = n == len(pieces) - 1 and m.end() == len(segment)
            if raw[0].isdigit():
                before = text[:start + m.start()]
                if not (self._number_open(raw, before) if still_open else self._number_done(raw, before)):
                    return False
            elif raw[0].isalpha():
                if not (self._word_open(raw) if still_open else self._word_done(raw)):
                    return False
        return True

    # ------------------------------------------------------------------ one candidate token
    def allows(self, written: str, token: str) -> bool:
        """Whether `token` may follow `written` (the text this row has generated so far)."""
        if not token or not PROSE.fullmatch(token):
            return False
        text = written + token
        if not self._pieces_ok(text, len(written) - len(_WORD_TAIL.search(written).group(0))):
            return False
        if re.search(r"\d", text[-50:]) and not self._numbers_whole(text):
            return False  # a number outside the pick's statistic phrases (agent/llm/stat_phrases.py)
        if not self.forms.inside_title(text):
            return False  # a word only a title supplies, outside a copy of that title
        if _GLUED.search(text, max(1, len(text) - 12)):  # (the look-behind still sees what is before)
            return False
        if re.search(r"\d(?:st|nd|rd|th)?-[a-z]|[a-z]-\d", text[-16:]):
            return False  # a number glued into a word ("27-year-older", "16-of-1993"): the checker's role rule
        low = text.lower()
        if not self._viewer_verbs_ok(re.split(r"[.;!?]\s", low)[-1]):
            return False
        if _VIEWER_STATE_WORD.search(low, max(0, len(low) - 40)):
            return False  # "you're in the top …": a whole word after "you're" that is no verb of request or history
        words = [w for w in re.findall(r"[a-z0-9]+(?:'[a-z]+)?", low) if not w[0].isdigit()]
        if len(words) >= 4 and tuple(words[-3:]) in {tuple(words[i:i + 3]) for i in range(len(words) - 3)}:
            return False  # the checker's "repeats itself" (a word being written counts as written)
        last = re.findall(r"[a-z0-9'\-]+", low[-40:])
        if last and last[-1] in self.last_generic_words and generic_phrases(low[-80:] + " ", self.checker.words):
            return False
        if len(_COUNTED.findall(text)) > MAX_WORDS:
            return False
        if not self._numbers_in_role(low) or not pair_open(low, self.item, self.evidence):
            return False
        done = text[:len(text) - len(_WORD_TAIL.search(text).group(0))]
        if re.search(r"\d", done) and number_problems(_mask_titles(done, self.titled), self.item, self.evidence):
            return False  # a percentage, a whole group or a pair the evidence does not hold
        if not self._meaning_ok(done):
            return False  # a true fact tied to the wrong subject (agent/llm/claim_meaning.py)
        # a request reference ("as you asked") only about what was asked: judged on the text so far, so a
        # reference with nothing before it to attach to is refused rather than left to what may follow
        return not (self.checker.requests.mentions_reference(low)
                    and self.checker.request_problems(text, self.item, self.evidence))

    def _viewer_verbs_ok(self, part: str) -> bool:
        """"you liked / rated / loved …" (in the sentence being written, lower case) is followed by a title the viewer
        liked, rated or named, or stands in a relative clause right after one ("Heat, which you rated highly")."""
        for said in _USER_VERB.finditer(part):
            before = part[:said.start()]
            head = before[:_RELATIVE_TAIL.search(before).start()]
            if any(head.endswith(t) for t in self.own_titles):
                continue
            rest = part[said.end():].lstrip()
            if not any(lead.startswith(rest) or self._own_title_open(rest[len(lead):])
                       for lead in ("", *OBJECT_LEADS) if rest.startswith(lead) or lead.startswith(rest)):
                return False
        return True

    def _numbers_whole(self, text: str) -> bool:
        return numbers_open(text.lower(), self.phrases, self.title_texts)

    def copying_title(self, text: str, shortest: int = 3) -> bool:
        """Whether `text` ends inside (or at the end of) a copy of a title of the pick or its evidence, at least
        `shortest` characters of it."""
        return ends_in_copy(text.lower(), self.title_texts, shortest)

    def _own_title_open(self, rest: str) -> bool:
        return any(t.startswith(rest) or rest.startswith(t) for t in self.own_titles)

    def _meaning_ok(self, done: str) -> bool:
        """`claim_meaning.meaning_problems` on the words written so far (the last one may still grow), cached: the
        candidate tokens of one step mostly share them."""
        ok = self._meant.get(done)
        if ok is None:
            marked = mark_titles(done, self.item, self.titled[1:])
            ok = self._meant[done] = not (meaning_problems(marked, self.item, self.evidence, final=False)
                                          or style_problems(marked, self.evidence, final=False))
        return ok

    def _numbers_in_role(self, low: str) -> bool:
        """The checker's role rules (agent/llm/claim_roles.py) on every whole number written: the words around it
        must be able to read as what it counts ("1,682 viewers" cannot follow the catalog size), no statistic is
        stated more often than the evidence holds it, and no praise phrase goes beyond the rating."""
        if unearned_praise(low, self.evidence):
            return False
        said: dict[str, int] = {}
        for m in NUMBER.finditer(low):
            rest = low[m.end():]
            if not rest or re.match(r"[.,]\d", rest) or (rest in ".," and m.group(0) + rest in self.number_prefixes):
                continue  # still being written ("4." on the way to "4.2")
            value = number_value(m.group(1))
            kinds = self.roles.get(value)
            if not kinds:
                continue  # a title's number, or one the grounding rules judge
            if not role_still_open(kinds, low[max(0, m.start() - 40):m.start()], low[m.end():m.end() + 40]):
                return False
            if value in self.statements:
                said[value] = said.get(value, 0) + 1
                if said[value] > self.statements[value]:
                    return False
        return True

    def may_end(self, written: str) -> bool:
        """Whether the row may stop here: a whole sentence of enough words that cites the pick's evidence, a piece
        personal to the viewer or the request whenever the evidence holds one."""
        text = " ".join(written.split())
        if not text.endswith((".", "!", "?")) or len(_COUNTED.findall(text)) < MIN_WORDS:
            return False
        if not self._numbers_in_role(text.lower() + " "):  # a number just before the full stop is whole now
            return False
        if number_problems(_mask_titles(text, self.titled), self.item, self.evidence):
            return False
        marked = mark_titles(text, self.item, self.titled[1:])
        if meaning_problems(marked, self.item, self.evidence) or style_problems(marked, self.evidence):
            return False
        if not self._numbers_whole(text):
            return False
        cited, personal = self.checker.citations(text, self.item, self.evidence)
        return bool(cited) and (personal or not self.personal)


class RowConstraints:
    """The constraints of one generation call, one per prompt row (None: that row is free), applied to the logits
    of each step by `restrict`."""

    def __init__(self, tokenizer, constraints: Sequence[ClaimConstraint | None], eos: int,
                 floor: float | None = None):
        self.texts = token_texts(tokenizer)
        self.constraints = list(constraints)
        self.eos = eos
        # greedy rows: a token the model itself gives a log-probability below `floor` is not searched for; a row
        # left with none is at a dead end (`dead_end`: agent/llm/lookahead.py steps back). Such a token would fall
        # below the explainer's fluency floor (rejected as garbled), and the search down a forced word's long tail
        # is most of the decoder's time.
        self.floor = floor
        self._index = token_index(tokenizer)
        self._masks: dict[int, object] = {}
        self.dead_end = False  # the last `restrict` found nothing the row may write (its end forced on it)

    def candidate_mask(self, prompt_row: int, width: int):
        """A bool vector over `width` logits: the tokens the row's constraint could ever allow (`token_index`)."""
        import torch

        mask = self._masks.get(prompt_row)
        if mask is None or len(mask) != width:
            constraint = self.constraints[prompt_row]
            shared = constraint.checker.words.vocabulary
            ids = shared_candidates(self._index, shared) | self._index.candidates(constraint.words - shared)
            mask = torch.zeros(width, dtype=torch.bool)
            mask[[t for t in ids if t < width] + ([self.eos] if self.eos < width else [])] = True
            self._masks[prompt_row] = mask
        return mask

    def copying_title(self, prompt_row: int, written: str, token: int) -> bool:
        """Whether `token` after `written` goes on copying a title (the distinct-phrase ban spares it)."""
        constraint = self.constraints[prompt_row]
        return constraint is not None and constraint.copying_title(written + self.texts[token])

    def restrict(self, logits_row, prompt_row: int, written: str, greedy: bool, unbanned=None,
                 total: float | None = None):
        """`logits_row` (1-D) with every token the row's constraint forbids set to -inf (in place: returned).
        `unbanned`: the row's logits before other bans (the distinct n-grams of a reply), searched when those
        bans leave nothing the constraint allows (rows that share " (199" must each still write their year).
        `total`: the log-sum-exp of the model's own logits, the floor's reference (default: of `unbanned`, else of
        `logits_row`), for a caller whose `unbanned` has tokens taken out already (lookahead.py's steps back)."""
        import torch

        constraint = self.constraints[prompt_row]
        self.dead_end = False
        if constraint is None:
            return logits_row
        cutoff = None
        if greedy and self.floor is not None:
            if total is None:
                total = float(torch.logsumexp(unbanned if unbanned is not None else logits_row, -1))
            cutoff = total + self.floor
        never = ~self.candidate_mask(prompt_row, logits_row.shape[-1])
        logits_row.masked_fill_(never, float("-inf"))
        keep = self._allowed(constraint, logits_row, written, greedy, cutoff)
        source = logits_row
        if not keep and unbanned is not None:
            unbanned.masked_fill_(never, float("-inf"))
            keep, source = self._allowed(constraint, unbanned, written, greedy, cutoff), unbanned
        self.dead_end = not keep
        if not keep:
            keep = [self.eos]  # nothing writable: the row ends (or steps back, lookahead.py) and the checker judges it
        index = torch.tensor(keep)
        kept = source[index].clone()
        logits_row.fill_(float("-inf"))
        logits_row[index] = kept
        return logits_row

    def _allowed(self, constraint: ClaimConstraint, logits_row, written: str, greedy: bool,
                 cutoff: float | None = None) -> list[int]:
        """The best allowed token (greedy) or the allowed ones among the best candidates (sampling); none below
        the logit `cutoff`."""
        import torch

        wanted = 1 if greedy else SAMPLED_CANDIDATES
        # the best few first; the whole order only when none of them is allowed
        best = torch.topk(logits_row, min(len(logits_row), 4 * SAMPLED_CANDIDATES)).indices.tolist()
        keep = self._walk(constraint, logits_row, written, best, wanted, greedy, cutoff=cutoff)
        if keep or len(best) == len(logits_row) or (cutoff is not None and logits_row[best[-1]] < cutoff):
            return keep
        rest = torch.argsort(logits_row, descending=True).tolist()[len(best):]
        return self._walk(constraint, logits_row, written, rest, wanted, greedy, start=len(best), cutoff=cutoff)

    def _walk(self, constraint: ClaimConstraint, logits_row, written: str, order: list[int], wanted: int,
              greedy: bool, start: int = 0, cutoff: float | None = None) -> list[int]:
        keep: list[int] = []
        for rank, token in enumerate(order, start):
            if rank >= wanted and keep:
                break
            if logits_row[token] == float("-inf") or (cutoff is not None and logits_row[token] < cutoff):
                break
            ok = constraint.may_end(written) if token == self.eos else constraint.allows(written, self.texts[token])
            if ok:
                keep.append(token)
                if greedy:
                    break
        return keep
