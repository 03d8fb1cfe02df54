"""The turn as composable LangChain Runnables: understand | retrieve | rerank | explain.

`RecommenderAgent.stream` runs exactly this chain, so `chain.stream(turn)` is the product's streaming
path, not a demo: the first three steps pass a `Turn` record along, and `explain` is a generator step
whose chunks are `{"text": delta}` dicts (with `"picked": [item]` on the line of each pick, as soon as its
explanation is final) followed by one `{"items": [...], "turn": turn}` chunk.
(Chunks are `AddableDict`s, so `chain.invoke(turn)` returns the whole text plus the items.)

    chain = build_turn_chain(agent.pipeline, attach_user=agent.attach_user)
    for chunk in chain.stream(Turn(message="sci-fi from the 80s", state=SessionState(session_id="x"))): ...
"""
from __future__ import annotations

from collections.abc import Callable, Iterator

from langchain_core.runnables import Runnable, RunnableGenerator, RunnableLambda
from langchain_core.runnables.utils import AddableDict

from agent.pipeline import Turn, TurnPipeline


def build_turn_chain(pipeline: TurnPipeline, attach_user: Callable[[Turn], None] | None = None) -> Runnable:
    def understand(turn: Turn) -> Turn:
        pipeline.understand(turn)
        if attach_user is not None:  # stored profile + known-user history join the turn here
            attach_user(turn)
        return turn

    def explain(turns: Iterator[Turn]) -> Iterator[AddableDict]:
        for turn in turns:
            shown = 0
            for delta in pipeline.explain(turn):
                new, shown = turn.items[shown:], len(turn.items)
                # the pick whose line this is, as soon as its explanation is final ("picked" lists add up on invoke)
                yield AddableDict(text=delta, picked=list(new)) if new else AddableDict(text=delta)
            yield AddableDict(items=list(turn.items), turn=turn)

    return (RunnableLambda(understand, name="understand")
            | RunnableLambda(pipeline.retrieve, name="retrieve")
            | RunnableLambda(pipeline.rerank, name="rerank")
            | RunnableGenerator(explain, name="explain")).with_config(run_name="marquee_turn")
