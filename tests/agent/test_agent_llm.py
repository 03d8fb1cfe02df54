"""The agent with the embedded LLM switched on: listwise rerank, grounded explanations, query expansion.
Slow (loads SmolLM2 on CPU); the other agent tests run the same pipeline with the LLM steps off."""
from __future__ import annotations

import pytest

from agent.chat_eval import grounding_violations


@pytest.mark.slow
def test_llm_pipeline_keeps_every_guarantee(agent_settings, agent, sid):
    from agent.core import RecommenderAgent

    cfg = agent_settings.agent.model_copy(update={"rerank": True, "explain": "llm", "expand_query": True})
    llm_agent = RecommenderAgent(agent_settings.model_copy(update={"agent": cfg}), service=agent.service)
    reply = llm_agent.chat("3 sci-fi films from the 80s, no war", session_id=sid)
    assert llm_agent.llm.errors == {}, llm_agent.llm.errors  # model, reranker and explainer really loaded
    assert {"reranker", "explainer"} <= set(llm_agent.llm._parts)
    assert len(reply.items) == 3
    for item in reply.items:
        assert "Sci-Fi" in item.genres and "War" not in item.genres and 1980 <= item.year <= 1989
        # explain = "llm" on an English reply: the checked LLM sentence, or the template marked as a fallback
        assert item.explanation_source in ("llm", "fallback") and item.explanation
        assert grounding_violations(item, agent.catalog) == []
    # the expansion is extra search text: the hard constraints above still held
    assert reply.search_query and reply.search_query != "Sci-Fi movies"
    assert len({i.item_id for i in reply.items}) == 3
