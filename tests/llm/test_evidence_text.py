"""Template explanations from evidence (agent/llm/evidence_text.py, wording in prompts/explain_template_*.toml):
grounded in the evidence for every catalog item, in English and Chinese; strongest evidence first; never only
the card's genres and year; different frames for the picks of one reply."""
from __future__ import annotations

import itertools
import re

import pytest

from agent.chat_eval import PHRASE_WORDS, phrase_words
from agent.evidence import satisfied
from agent.llm.evidence_text import LEAD_KINDS, MIN_LIFT, ExplanationWriter, frame_fields, frames
from agent.llm.grounding import GroundingChecker
from agent.locale import Locale
from agent.session import SessionState
from agent.understanding.aliases import shown_names
from retrieval.evidence import CatalogStats, Connection, Evidence, SharedGenres

FIELDS = {"source", "fans", "also", "percent", "lift", "genres", "mean", "scale", "count", "rank", "size", "top",
          "viewers", "moods"}
NEVER_TOGETHER = {"connection_loved", "connection_watched"}  # a log either has ratings or it has not


@pytest.fixture(scope="module")
def checker(catalog):
    return GroundingChecker(catalog)


@pytest.fixture(scope="module")
def writers(catalog):
    zh = Locale("zh", shown_names({it.item_id: it.label for it in catalog}))
    return {"en": ExplanationWriter("en"), "zh": ExplanationWriter("zh", genre_name=zh.genre, title_name=zh.title)}


def _grams(text: str, n: int = PHRASE_WORDS) -> set[tuple[str, ...]]:
    words = phrase_words(text)
    return {tuple(words[i:i + n]) for i in range(len(words) - n + 1)}


def _sample(field: str, where: str) -> str:
    """A stand-in for a field's value as it repeats across the picks of a reply: a genre list is up to three words,
    mood words two, a number one; a title never counts (the phrase check leaves titles out)."""
    return {"genres": "Xg Xh Xi", "moods": "Xm Xn", "source": f"Xtitle{where}"}.get(field, f"X{field}")


@pytest.mark.parametrize("language", ["en", "zh"])
def test_frames_are_distinct_and_use_known_fields(language):
    table = frames(language)
    assert set(table) == set(frames("en"))  # the same kinds in every language
    rendered = []
    for kind, texts in table.items():
        assert len(texts) >= 4, kind
        for n, frame in enumerate(texts):
            assert frame_fields(frame) <= FIELDS, (kind, frame)
            rendered.append((kind, frame.format(**{f: _sample(f, f"{kind}{n}") for f in frame_fields(frame)})))
    # no two frames that can meet in one reply share a five-word sequence, even where their fields hold the same
    # values (a Chinese character is a word, as in agent.chat_eval.shared_phrases)
    overlaps = [(a, b) for (ka, a), (kb, b) in itertools.combinations(rendered, 2)
                if {ka, kb} != NEVER_TOGETHER and _grams(a) & _grams(b)]
    assert overlaps == []


def _evidence(catalog, log, state, liked_ids, items):
    liked = [catalog.index_of(i) for i in liked_ids]
    found = log.connections([catalog.index_of(it.item_id) for it in items], [(i, "liked") for i in liked])
    out = []
    for it, connections in zip(items, found):
        shared = [SharedGenres(item_id=i, title=catalog[i].label, genres=[g for g in catalog[i].genres if g in it.genres])
                  for i in liked_ids]
        out.append(Evidence(item_id=it.item_id, connections=connections[:2], satisfies=satisfied(it, state),
                            shared_genres=[s for s in shared if s.genres and s.item_id != it.item_id],
                            catalog=log.stats(catalog.index_of(it.item_id))))
    return out


REQUESTS = [  # (session wishes, liked titles): connections, compounds, moods, audiences, years, nothing at all
    (dict(genres=["Drama", "War"], genre_mode="all", year_min=1950, year_max=1999), ["1", "50"]),
    (dict(genres=["Comedy", "Sci-Fi"], moods=["light"], mood_genres=["Comedy", "Romance"]), []),
    (dict(audience_genres=["Children's", "Animation"], year_max=1979), []),
    (dict(), []),
]


@pytest.mark.parametrize("language", ["en", "zh"])
@pytest.mark.parametrize("wishes, liked", REQUESTS)
def test_every_catalog_items_template_passes_the_check(catalog, log, checker, writers, language, wishes, liked):
    # No genre, year, title or number that the item and its evidence do not support, for any catalog item (titles
    # such as "Mr. Holland's Opus" or "Mystery Science Theater 3000" once tripped the title and number rules).
    state = SessionState(session_id="s", liked=liked, **wishes)
    items = [it for it in catalog if it.item_id not in liked]
    failing = []
    for start in range(0, len(items), 5):  # replies of five picks, so the frames rotate as in a conversation
        chunk = items[start:start + 5]
        evidence = _evidence(catalog, log, state, liked, chunk)
        for item, ev, (text, kinds) in zip(chunk, evidence, writers[language].explain(list(zip(chunk, evidence)))):
            verdict = checker.check(text, item, evidence=ev)
            if not verdict.ok or kinds[0] not in LEAD_KINDS:
                failing.append((item.label, text, verdict.problems, kinds))
    assert failing == []


def test_the_strongest_evidence_leads_and_the_request_follows(catalog, log, writers):
    heat = next(it for it in catalog if it.label == "Heat (1995)")
    state = SessionState(session_id="s", genres=["Sci-Fi", "Action"], genre_mode="blend", anchors=[heat.item_id],
                         liked=[heat.item_id])
    picks = [catalog[i] for i in ("50", "172", "181", "222", "228")]
    evidence = _evidence(catalog, log, state, [heat.item_id], picks)
    explained = writers["en"].explain(list(zip(picks, evidence)))
    for (text, kinds), ev in zip(explained, evidence):
        assert kinds[0] == "connection_loved" and "Heat (1995)" in text  # a connection beats every statistic
        c = ev.connections[0]
        assert {str(c.percent), str(c.fans), str(c.also)} & set(re.findall(r"\d+", text.replace(",", "")))
        if ev.satisfies.all_genres:
            assert kinds[1] == "compound"
    # five picks citing the same film, and still no five-word sequence in common
    for (a, _), (b, _) in itertools.combinations(explained, 2):
        assert not (_grams(a.replace("Heat (1995)", "Xt")) & _grams(b.replace("Heat (1995)", "Xu")))


def test_equal_statistics_take_turns_leading(catalog, log, writers):
    picks = [catalog[i] for i in ("50", "100", "181", "258", "174", "127")]  # all popular and well rated
    evidence = [Evidence(item_id=it.item_id, catalog=log.stats(catalog.index_of(it.item_id))) for it in picks]
    leads = [kinds[0] for _, kinds in writers["en"].explain(list(zip(picks, evidence)))]
    assert set(leads) == {"rating", "popular"} and leads[:2] != [leads[0]] * 2


def test_variants_reword_each_pick_from_the_same_evidence(catalog, log, checker, writers):
    heat = next(it for it in catalog if it.label == "Heat (1995)")
    state = SessionState(session_id="s", genres=["Sci-Fi", "Action"], genre_mode="blend", liked=[heat.item_id])
    picks = [catalog[i] for i in ("50", "172", "181")]
    pairs = list(zip(picks, _evidence(catalog, log, state, [heat.item_id], picks)))
    firsts = writers["en"].write(pairs)
    for (item, ev), first, others in zip(pairs, firsts, writers["en"].variants(pairs)):
        assert others and first not in others and len(set(others)) == len(others)
        for text in others:  # another wording, the same facts: each passes the grounding check
            verdict = checker.check(text, item, evidence=ev)
            assert verdict.ok, (text, verdict.problems)


def test_a_weak_lift_is_never_stated(catalog):
    item = catalog["50"]
    weak = Connection(item_id="1", title=catalog["1"].label, relation="liked", measure="loved", fans=400, also=300,
                      percent=75, lift=1.1, strength=0.7)
    texts = ExplanationWriter("en").write([(item, Evidence(item_id="50", connections=[weak]))] * 8)
    assert not any("times" in t for t in texts) and len(set(texts)) == 7  # the one lift frame is skipped
    strong = weak.model_copy(update={"lift": MIN_LIFT + 1})
    texts = ExplanationWriter("en").write([(item, Evidence(item_id="50", connections=[strong]))] * 8)
    assert any(f"{MIN_LIFT + 1:.1f} times" in t for t in texts)


def test_chinese_templates_name_genres_and_titles_in_chinese(catalog, writers):
    star_wars, toy_story = catalog["50"], catalog["1"]
    ev = Evidence(item_id="50", shared_genres=[SharedGenres(item_id="1", title=toy_story.label, genres=["Adventure"])],
                  satisfies=satisfied(star_wars, SessionState(session_id="s", genres=["Sci-Fi", "Action"])),
                  catalog=CatalogStats(rating_mean=4.4, rating_count=583, rating_scale=5, viewers=583,
                                       popularity_rank=1, catalog_size=1682, top_percent=1))
    (text, kinds), = writers["zh"].explain([(star_wars, ev)])
    assert kinds == ("shared", "compound")
    assert "Toy Story (1995)《玩具总动员》" in text and "冒险" in text and "科幻和动作" in text
    assert not re.search(r"[A-Za-z]", text.replace("Toy Story (1995)", ""))  # nothing else left in English
