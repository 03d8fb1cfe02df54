"""What a sentence says of whom: the strict check's rules for sentences whose every number and title is true and in
its role (agent/llm/claim_roles.py), yet tied to the wrong subject. Found in the manual audit of the LoRA explainer
(benchmarks/results/eval-explain-audit.md):
- the viewer loved, liked, watched or rated only titles of theirs: "it is a film you loved", "Comedy movies you
  love" claim a liking the evidence does not hold (a relative clause right after a title, "Heat, which you rated
  highly", is judged by the title's relation in agent/llm/claims.py);
- a whole group never did what only part of it did: "its 178 fans loved it too" (94 of them did), "368 viewers loved
  it" (they watched it), "a favorite of 128 viewers"; and the pick's own audience did not watch another title
  ("219 viewers have watched Cliffhanger");
- a year is no film ("1991 is a title you've requested"), and the pick is no other title ("its 1991 thriller is The
  Princess Bride");
- a share belongs to its pair and a percentile to its statistic: "9 of its 36 fans (17%)" when 9 of 36 is 25%;
  "the top 2% by rating" when 2% is its audience's percentile; "18 of 1,682 viewers" (its popularity rank of the
  catalog read as viewers);
- the average of all viewers is no one audience's rating ("the family rating is 2.8");
- a percentile belongs to the statistic it follows ("its rating is in the top 7%" when 7% is its audience's), a
  share to the group it names ("67% of the 111 fans" when 67% is another title's share), and nothing is a share of
  the catalog ("65% of the catalog is Comedy"); a popularity rank is said as one ("number 300 of 1,682", not "300
  of 1,682");
- the pick's audience did not also watch the viewer's title ("111 viewers watched it too"), and nothing invents a
  cause or a future ("you liked Heat so much that …", "a new favorite") or denies a fact ("it is not from 1997"
  of a 1997 film), nor calls it new ("a new action movie" of a 1977 film);
- the viewer asks and got no rating: "the film you are asked to watch", "296 viewers have given you 4.5 out of 5",
  and wants to watch no title they named ("you want to watch Forrest Gump (1994) too"); the fans counted loved the
  film, not a genre ("64 of its 336 fans have also loved Sci-Fi"); the catalog's size is only what a place is out
  of ("2.5 out of 5 from 1,682 in the catalog");
- (descriptions, `marquee enrich`) another title is not described with the pick's facts ("My Man Godfrey (1936) is a
  comedy film from 1940" of His Girl Friday), and nothing is "a favorite among viewers" or "of many".

`meaning_problems(marked, item, evidence)` reads the sentence with its titles marked (`claim_roles.mark_titles`).
While the claim-constrained decoder (agent/llm/constrained.py) writes, `final=False` leaves undecided what the next
words may still settle (the object of "its 178 fans loved …" may yet be their own title).
"""
from __future__ import annotations

import re

from agent.llm.claim_roles import OTHER_MARK, PICK_MARK
from agent.llm.claim_words import genres_named, number_value
from retrieval.catalog.schema import Item
from retrieval.evidence import Evidence

_ANY_MARK = rf"(?:{PICK_MARK}|{OTHER_MARK}\d+)"
_VIEWER_DID = re.compile(r"\byou(?:'ve|'d| have| had)?\s+(?:also\s+|really\s+|once\s+|already\s+)?"
                         r"(loved|liked|enjoyed|adored|rated|watched|saw|seen|love|like|enjoy|adore|rate|watch)\b")
OBJECT_LEADS = ("both ", "in ", "about ")  # "the Crime and Thriller you liked in Heat"
_TITLE_NEXT = re.compile(r"\s*(?:" + "|".join(OBJECT_LEADS) + rf")?{_ANY_MARK}")
# what may stand between a title and a verb of the viewer's about it: "Heat, which you rated highly", "Heat is one
# of the films you rated highly"
RELATIVE_CLAUSE = (r"\s*,?\s*(?:(?:which|that|one|(?:(?:is|was)\s+)?(?:a|one of the|one of|among the)\s+"
                   r"(?:film|movie|title|films|movies|titles))\s+(?:that\s+|which\s+)?(?:[a-z]+\s+){0,2}?)?$")
_TITLE_BEFORE = re.compile(_ANY_MARK + RELATIVE_CLAUSE)
_NUM = r"(\d[\d,]*\d|\d)"
PEOPLE = r"(?:fans|viewers|people|users|admirers|watchers|raters|moviegoers|others)"
_GROUP_DID = re.compile(rf"(?<![\d,.]){_NUM}\s+(?:[a-z]+\s+)?{PEOPLE}\s+"
                        r"(?:of\s+(?:this|that|the)\s+(?:film|movie|one|title|pick)\s+)?(?:who\s+|that\s+)?"
                        r"(?:have\s+|has\s+|had\s+|all\s+)?"
                        r"(?:also\s+|too\s+)?(loved|liked|enjoyed|adored|love|like|enjoy|watched|saw|seen|watch|see)\b")
_PART_OF = re.compile(r"\b(?:of|among|out of)\s+(?:its\s+|the\s+|their\s+|all\s+|those\s+)?$")
_THE_PICK = re.compile(rf"\s*(?:it\b|this\b|{PICK_MARK}|too\b|as well\b|[.,;!?]|"
                       r"the\s+(?:[a-z'-]+\s+)?(?:film|movie|one|pick)\b)")
_FAVORITE = re.compile(rf"\bfavou?rites?\s+(?:of|among|with|for)\s+(?:its\s+|the\s+|their\s+|all\s+)?{_NUM}")
_YEAR_AS_FILM = re.compile(r"(?<![\d,])(?:1[89]\d\d|20\d\d)\s+(?:is|was|'s)\s+(?:a|an|the|one)\b")
_PICK_AS_OTHER = re.compile(rf"\b(?:it|its|this)\b[^.;,]{{0,30}}?\s(?:is|was)\s+(?:also\s+)?{OTHER_MARK}\d+")
_PAIR_SHARE = re.compile(rf"{_NUM}\s+(?:of|out of)\s+(?:its\s+|the\s+|their\s+)?{_NUM}\b[^()%.;]{{0,60}}?"
                         r"\(\s*(\d+)\s*%")
_TOP_BY = re.compile(r"\btop\s+(\d+)\s*%[^.;,]{0,40}?\bby\s+(rating|ratings|average|score|audience|viewers|"
                     r"popularity|views|viewership)\b")
_PAIR_AS_PEOPLE = re.compile(rf"{_NUM}\s+(?:of|out of)\s+(?:the\s+|its\s+)?{_NUM}\s+(?:[a-z]+\s+)?{PEOPLE}")
_AUDIENCE_RATING = re.compile(r"\b(?:family|families'?|kids'?|children'?s?|audience'?s?)\s+(?:rating|score|average|"
                              r"verdict)\b")
_RATING_WORDS = ("rating", "ratings", "average", "score")
# "this sci-fi film (The Maltese Falcon)": another title in brackets names the pick
_PICK_BRACKETED = re.compile(rf"\bthis\s+(?:[a-z'-]+\s+){{0,2}}?(?:film|movie|one|title|pick)\s*\(\s*{OTHER_MARK}\d+")
_INVENTED = re.compile(r"\bso much(?:,)?\s+(?:that|so|it|this|which)\b")
# "a new favorite", "a new action movie", "it is a new one" (of a 1977 film): only its year says when it was made
_CALLED_NEW = re.compile(r"\b(?:a|an|your|the)\s+new\s+(?!to\b)[a-z'-]+")
# what the viewer did with a title ("Heat (1995) is a film you rated highly", "… was your thing"): what it is to them
_YOUR_DOING = r"(?:rated|liked|loved|enjoyed|watched|saw|named|mentioned|asked|picked|chose|gave|praised)\b"
# "My Man Godfrey (1936) is a comedy film from 1940", "You liked The Right Stuff (1983) is Action and Thriller":
# another title described with the pick's facts, unless the
# clause goes on to say what the viewer did with it ("Heat (1995) is a film you rated highly"; not "… is a thriller
# you want to watch", which is said of the pick)
_OTHER_DESCRIBED = re.compile(rf"{OTHER_MARK}\d+\s+(?:is|was)\s+(?![^.;,]*?\b(?:you\s+{_YOUR_DOING}|your\b))[^.;,]*")
# "a favorite among viewers", "a favorite of the epic mood": a following no statistic states
_VAGUE_FAVORITE = re.compile(r"\bfavou?rites?\s+(?:of|among|with|for|to)\s+(?!(?:its\s+|the\s+|all\s+)?\d)")
# "with a 507 viewers' request": the request is the viewer's, no audience's
_GROUP_REQUEST = re.compile(rf"{_NUM}\s+(?:[a-z]+\s+)?{PEOPLE}'s?\s+(?:request|requests|wish|wishes|choice|pick|mood|"
                            r"taste|search)\b")
# "you didn't mention that …", "a film you don't want to watch": the evidence holds what the viewer asked for and
# liked, never what they did not say or do not want ("you don't want to miss" is praise, judged as such)
_UNWANTED = re.compile(r"\byou\s+(?:don't|do not|didn't|did not|never|haven't|have not|hadn't|had not)\s+"
                       r"(?:want|wanted|like|love|enjoy|ask|asked|mention|mentioned|name|named|need|seen|watched|"
                       r"rated|see|watch)\b(?!\s+to\s+miss)")
# "it is within the years you wanted to avoid": a pick never is
_IN_AVOIDED = re.compile(r"\b(?:within|in|inside|from|among|of)\s+(?:the\s+)?"
                         r"(?:years|era|decades?|period|genres?|kind)\s+you\s+(?:want|wanted|would rather|'d rather)\s+"
                         r"(?:to\s+)?(?:avoid|skip|exclude)")
# "32% of the audience also loved this film": the evidence's shares are of a title's fans, never of everyone
_SHARE_OF_ALL = re.compile(r"(?<!top )(?<!top)\b\d+\s*%\s+of\s+(?:the\s+|its\s+|all\s+)?(?:audience|viewers|people|"
                           r"moviegoers|raters|watchers|everyone|viewership|ratings|votes|reviews|scores)\b"
                           r"(?!\s+(?:who|that|of)\b)")
# "as a 1994 documentary you loved Taxi Driver (1976)": the pick's year and genre given to another title
_FACTS_TO_OTHER = re.compile(rf"\bas\s+an?\s+(?:(?:1[89]|20)\d\d\s+)?[a-z'-]+(?:\s+(?:film|movie))?,?\s+you\s+"
                             rf"(?:loved|liked|rated|enjoyed)\s+{OTHER_MARK}\d+")
# "You rated Rebecca (1940) highly, and its rating is in the top 2%": "its" reads as the title just named
_STAT_TO_OTHER = re.compile(rf"{OTHER_MARK}\d+\s+(?:highly\s*)?(?:,\s*|;\s*|\s)(?:and\s+|with\s+)?its\s+"
                            r"(?:[\d,]+\s+)?(?:average\s+)?(?:rating|ratings|average|score|audience|viewership|"
                            r"popularity|rank)\b")
# "the 1997 film that has been giving the most views" of the 52nd most watched: a superlative only rank 1 earns
_MOST = re.compile(r"\b(?:the\s+)?most\s+(?:views|viewers|viewed|watched|ratings|rated|popular|fans|loved|liked)\b")
# "You can't say that, but you can say that it is a comedy": talk about the sentence, not the film
_META_TALK = re.compile(r"\byou\s+(?:can|can't|cannot|could|may|might|should|must)\s+(?:not\s+)?(?:say|add|write|"
                        r"mention|note|tell|call)\b")
# "296 viewers have given you 4.5 out of 5": the ratings are the pick's, from its viewers; the viewer got none
_GIVEN_YOU = re.compile(r"\b(?:given|gave|give|gives|giving)\s+you\b")
# "the sci-fi film you are asked to watch": the viewer asks, nobody asks the viewer
_ASKED_OF_YOU = re.compile(r"\byou\s+(?:are|were|'re|have been|'ve been|had been)\s+(?:being\s+)?asked\b")
# "you want to watch Forrest Gump (1994) too": the evidence holds what the viewer liked or asked more like
_WANT_OTHER = re.compile(rf"\byou\s+(?:want|wanted|would like|'d like|wish|wished|hope)\s+to\s+(?:watch|see|rewatch)\s+"
                         rf"{OTHER_MARK}\d+")
# "64 of its 336 fans have also loved Sci-Fi": the fans counted loved this film, not a genre (checked word by word)
_FANS_LOVED = re.compile(rf"{PEOPLE}\s+(?:who\s+|that\s+)?(?:have\s+|has\s+|had\s+)?(?:also\s+)?(?:loved|liked|"
                         r"enjoyed|adored)\s+([a-z][\w'-]*)(?=[\s.,;!?])")
# "83 of its 162 fans also loved this film (top 5%)": a pair's bracket holds its share, never a percentile
_PAIR_TOP = re.compile(rf"{_NUM}\s+(?:of|out of)\s+(?:its\s+|the\s+|their\s+)?{_NUM}\b[^()%.;]{{0,60}}?"
                       r"\(\s*top\s+\d+\s*%")
# "as an audience it suits 218 viewers": the evidence counts who watched it, not whom it suits
_SUITS_GROUP = re.compile(rf"\bsuits?\s+(?:the\s+|its\s+|all\s+|those\s+)?{_NUM}\s+(?:[a-z]+\s+)?{PEOPLE}")
_IDENTITY_RULES = ((_YEAR_AS_FILM, "treats a year as a film ({!r})"),
                   (_PICK_AS_OTHER, "says the pick is another title ({!r})"),
                   (_PICK_BRACKETED, "names the pick as another title ({!r})"),
                   (_AUDIENCE_RATING, "presents the average of all viewers as {!r}"),
                   (_INVENTED, "invents a cause, a degree or a future the evidence does not hold ({!r})"),
                   (_CALLED_NEW, "calls it new ({!r}): only its year says when it was made"),
                   (_GROUP_REQUEST, "gives the request to a group of viewers ({!r}): it is yours"),
                   (_VAGUE_FAVORITE, "claims a following the evidence does not state ({!r})"),
                   (_UNWANTED, "says what you do not want or did not say ({!r}): the evidence holds what you asked "
                               "for and liked"),
                   (_IN_AVOIDED, "puts it among what you wanted to avoid ({!r})"),
                   (_META_TALK, "talks about the sentence instead of the film ({!r})"),
                   (_SHARE_OF_ALL, "gives a share to a whole audience ({!r}): the evidence's shares are of a "
                                   "title's fans"),
                   (_FACTS_TO_OTHER, "gives the pick's facts to another title ({!r})"),
                   (_STAT_TO_OTHER, "gives the pick's statistic to the title before it ({!r}): say 'this film's'"),
                   (_GIVEN_YOU, "says viewers gave you something ({!r}): its ratings are from its viewers"),
                   (_ASKED_OF_YOU, "says you were asked ({!r}): the request is yours"),
                   (_WANT_OTHER, "says you want to watch a title you named ({!r}): the evidence holds what you "
                                 "liked or asked more like"),
                   (_PAIR_TOP, "puts a percentile where the pair's share goes ({!r})"),
                   (_SUITS_GROUP, "says it suits a counted audience ({!r}): the evidence counts who watched it"))
# the statistic a "top N%" belongs to, named before it in its clause: "its rating is in the top 7%"
_TOP_OWNER = re.compile(r"\b(rating|ratings|average|score|scores|audience|viewers|viewership|popularity|views)\b"
                        r"[^.;,%]{0,25}?\btop\s+(\d+)\s*%(?![^.;,]{0,40}?\bby\s)")
_PERCENT_OF_GROUP = re.compile(rf"(\d+)\s*%\s+(?:of|among)\s+(?:its\s+|the\s+|their\s+|those\s+|all\s+)?{_NUM}\s+"
                               rf"(?:[a-z]+\s+)?{PEOPLE}")
_CATALOG_SHARE = re.compile(r"(?<!top )(?<!top)\b(\d+)\s*%\s+of\s+(?:the\s+|its\s+|our\s+)?"
                            r"(?:[\d,]+\s+(?:[a-z]+\s+)?(?:in\s+the\s+)?)?catalog")
_RANK_WORDS = re.compile(r"(?:number|no\.|#|rank|ranks|ranked|ranking|place|placed|placing|position|spot|"
                         r"(?:puts|putting|places|placing)\s+it\s+at)\s*$")
_ALSO_WATCHED = re.compile(r"\s*(?:it\s+|this\s+(?:[a-z'-]+\s+){{0,2}}?(?:film|movie|one)\s+|{}\s+)?(?:too|as well)\b"
                           .format(PICK_MARK))
_NOT_YEAR = re.compile(r"\bnot\s+(?:from|in|released in|made in|of)\s+(?:the\s+year\s+)?((?:1[89]|20)\d\d)\b")
_NOT_DECADE = re.compile(r"\bnot\s+(?:from|in|released in|made in|of)\s+(?:the\s+)?(1[89]|20)?(\d)0'?s\b")
# "(1,682 in the catalog by audience)", "2.5 out of 5 from 1,682 in the catalog": the catalog's size is only ever
# the whole a place is out of ("number 3 of 1,682 …", "among the 1,682 titles")
_WHOLE_NUMBER = re.compile(r"(?<![\d,.])(\d{1,3}(?:,\d{3})+|\d+)(?![\d]|[,.]\d)")
_OUT_OF = re.compile(r"\b(?:of|among|out of)\s+(?:the\s+|all\s+|its\s+)?$")


def meaning_problems(marked: str, item: Item, evidence: Evidence, final: bool = True) -> list[str]:
    """The rules of this module on `marked` (the sentence as `claim_roles.mark_titles` writes it)."""
    low = " ".join(marked.lower().split())
    return (_viewer_likings(low, final) + _group_subjects(low, evidence, final) + _identities(low, final)
            + _shares(low, evidence) + _percentiles(low, evidence) + _denials(low, item)
            + _superlatives(low, evidence))


def _viewer_likings(low: str, final: bool) -> list[str]:
    if not final:
        return []  # a title being written is not marked yet: the decoder's own rule (constrained._USER_VERB)
    problems = []
    for m in _VIEWER_DID.finditer(low):
        if _TITLE_NEXT.match(low[m.end():]) or _TITLE_BEFORE.search(low[:m.start()]):
            continue
        problems.append(f"says you {m.group(1)} something other than a title of yours "
                        f"({low[max(0, m.start() - 20):m.end()].strip()!r}): the evidence holds only your titles")
    return problems


def _totals(evidence: Evidence) -> dict[str, str]:
    """Each whole group's size -> what it is."""
    totals = {str(c.fans): f"the fans of {c.title}" for c in evidence.connections}
    k = evidence.catalog
    if k is not None:
        totals.setdefault(str(k.rating_count), "its raters")
        totals.setdefault(str(k.viewers), "its audience")
        totals.setdefault(str(k.catalog_size), "the catalog's titles")
    return totals


def _group_subjects(low: str, evidence: Evidence, final: bool) -> list[str]:
    totals = _totals(evidence)
    fans = {str(c.fans) for c in evidence.connections}
    k = evidence.catalog
    audience = {str(k.viewers), str(k.rating_count)} if k is not None else set()
    problems = []
    for m in _GROUP_DID.finditer(low):
        value, verb = number_value(m.group(1)), m.group(2)
        if value not in totals or _PART_OF.search(low[:m.start()]):
            continue
        after = low[m.end():]
        to_pick = _THE_PICK.match(after) or (final and not after.strip())
        to_other = re.match(rf"\s*{OTHER_MARK}\d+", after)
        watched = verb in ("watched", "saw", "seen", "watch", "see")
        if to_pick and (value in fans or not watched):
            problems.append(f"says all {m.group(1)} ({totals[value]}) {verb} the pick; the evidence counts only "
                            "part of a group that did")
        elif to_pick and value in audience and value not in fans and _ALSO_WATCHED.match(after):
            problems.append(f"says the pick's {m.group(1)} viewers {verb} it too, as if they also watched your title")
        elif to_other and value in audience and value not in fans:
            problems.append(f"says the pick's {m.group(1)} viewers {verb} another title")
    for m in _FANS_LOVED.finditer(low):
        if genres_named(m.group(1)):
            problems.append(f"says {m.group(0)!r}: the fans it counts loved this film, not a genre")
    for m in _FAVORITE.finditer(low):
        value = number_value(m.group(1))
        if value in totals:
            problems.append(f"calls it a favorite of all {m.group(1)} ({totals[value]}), which the evidence does not "
                            "say")
    return problems


def _identities(low: str, final: bool) -> list[str]:
    found = ((rule.search(low), problem) for rule, problem in _IDENTITY_RULES)
    problems = [problem.format(m.group(0)) for m, problem in found if m]
    for m in _OTHER_DESCRIBED.finditer(low):
        if final or low[m.end():m.end() + 1] in (".", ";", ","):  # while writing, "you" may yet end the clause
            problems.append(f"describes another title as if it were the pick ({m.group(0)!r})")
    return problems


def _shares(low: str, evidence: Evidence) -> list[str]:
    problems = []
    shares = {(str(c.also), str(c.fans)): str(c.percent) for c in evidence.connections}
    for m in _PAIR_SHARE.finditer(low):
        pair = (number_value(m.group(1)), number_value(m.group(2)))
        if pair in shares and m.group(3) != shares[pair]:
            problems.append(f"gives {m.group(1)} of {m.group(2)} as {m.group(3)}% (it is {shares[pair]}%)")
    k = evidence.catalog
    if k is not None:
        for m in _TOP_BY.finditer(low):
            by_rating = m.group(2) in _RATING_WORDS
            own = k.rating_top_percent if by_rating else k.top_percent
            if own is None or m.group(1) != str(own):
                problems.append(f"'top {m.group(1)}% by {m.group(2)}': that is not its percentile by "
                                f"{'rating' if by_rating else 'audience'}")
        for m in _PAIR_AS_PEOPLE.finditer(low):
            if number_value(m.group(2)) == str(k.catalog_size):
                problems.append(f"'{m.group(0)}' reads a place in the catalog as a count of people")
        other_figures = {str(k.viewers), str(k.rating_count), *(str(c.fans) for c in evidence.connections)}
        for m in _WHOLE_NUMBER.finditer(low):
            value = number_value(m.group(1))
            if value == str(k.catalog_size) and value not in other_figures and not _OUT_OF.search(low[:m.start()]):
                around = low[max(0, m.start() - 20):m.end() + 20].strip()
                problems.append(f"gives the catalog's size as another figure ('{around}'): it is only what a place "
                                f"is out of, as in number {k.popularity_rank} of {k.catalog_size:,} by audience")
    return problems


def _percentiles(low: str, evidence: Evidence) -> list[str]:
    """A percentile after the statistic it belongs to, a percent share of a named group, no share of the catalog,
    a popularity rank said as a rank."""
    k = evidence.catalog
    problems = []
    if k is not None:
        for m in _TOP_OWNER.finditer(low):
            # "viewers rate it in the top 2%" is about the rating
            by_rating = m.group(1) in (*_RATING_WORDS, "scores") or bool(re.search(r"\b(?:rat|scor)", m.group(0)[1:]))
            own = k.rating_top_percent if by_rating else k.top_percent
            if own is None or m.group(2) != str(own):
                owner = "rating" if by_rating else "audience"
                problems.append(f"'{m.group(0)}': that is not its percentile by {owner}")
        rank = f"{k.popularity_rank} of {k.catalog_size:,}"
        for at in (i for i in range(len(low)) if low.startswith(rank, i)):
            if (at == 0 or not low[at - 1].isdigit()) and not _RANK_WORDS.search(low[:at]):
                problems.append(f"'{rank}' is its place by audience: say it as one ('number {rank}')")
    shares = {str(c.fans): str(c.percent) for c in evidence.connections}
    for m in _PERCENT_OF_GROUP.finditer(low):
        group = number_value(m.group(2))
        if shares.get(group) != m.group(1):
            problems.append(f"'{m.group(0)}': the evidence holds no such share of that group")
    problems += [f"'{m.group(0)}': the evidence holds no share of the catalog" for m in _CATALOG_SHARE.finditer(low)]
    return problems


def _superlatives(low: str, evidence: Evidence) -> list[str]:
    """"the most views" only of the most watched title; "one of the most watched" of the most-watched tenth (the
    praise words' own licence, agent/llm/claims.toml [praise])."""
    k = evidence.catalog
    problems = []
    for m in _MOST.finditer(low):
        among = re.search(r"\b(?:one\s+of|among)\s+(?:the\s+)?$", low[:m.start()])
        if k is not None and (k.popularity_rank == 1 or (among and k.most_watched)):
            continue
        where = f"number {k.popularity_rank} by audience" if k is not None else "nowhere"
        problems.append(f"claims a superlative ('{m.group(0)}'): the evidence ranks it {where}")
    return problems


def _denials(low: str, item: Item) -> list[str]:
    """A negation of the pick's own year or decade ("it is not from 1997", "not from the 1990s" of a 1997 film)."""
    if not item.year:
        return []
    problems = [f"denies its year ('{m.group(0)}')" for m in _NOT_YEAR.finditer(low) if m.group(1) == str(item.year)]
    for m in _NOT_DECADE.finditer(low):
        century, decade = m.group(1), int(m.group(2))
        if (item.year // 10) % 10 == decade and (century is None or item.year // 100 == int(century)):
            problems.append(f"denies its decade ('{m.group(0)}')")
    return problems
