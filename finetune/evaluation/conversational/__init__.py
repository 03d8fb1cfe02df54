"""The request-conditioned benchmark of the whole chat turn (`marquee eval --conversational`).

Per user of the leave-one-out split the target is the held-out item of the stage (test: the last film;
validation: the one before, for tuning); one request per type is written from its attributes (`requests`),
every system answers from what precedes the target (`isolation`), and the picks are scored against the target and the request (`scoring`, `report`). Baselines of the same
run: `marquee eval` rankers ignoring the request or behind an ORACLE filter of its attributes (`systems`).
"""
from finetune.evaluation.conversational.runner import run_conversational

__all__ = ["run_conversational"]
