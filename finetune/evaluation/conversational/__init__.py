"""The request-conditioned benchmark of the whole chat turn (`marquee eval --conversational`).

Per test user of the leave-one-out split the target is the held-out last film; one request per type is
written from its attributes (`requests`), every system answers from the train split only (`isolation`),
and the picks are scored against the target and the request (`scoring`, `report`). Baselines of the same
run: `marquee eval` rankers ignoring the request or behind an ORACLE filter of its attributes (`systems`).
"""
from finetune.evaluation.conversational.config import ConversationalConfig, SystemSpec, load_conversational_config
from finetune.evaluation.conversational.runner import run_conversational

__all__ = ["ConversationalConfig", "SystemSpec", "load_conversational_config", "run_conversational"]
