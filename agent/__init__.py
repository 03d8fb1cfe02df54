"""The conversation layer: preferences, session state, agent, CLI, web app. `agent.llm` is the LLM runtime."""
from __future__ import annotations

import os

# Offline by construction (docs/ARCHITECTURE.md §4): set before any HF / Gradio / Chroma import.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
os.environ.setdefault("ANONYMIZED_TELEMETRY", "False")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # no OpenMP spin-waiting on small CPUs


def __getattr__(name: str):
    if name == "RecommenderAgent":  # lazy: `import agent` stays cheap for the CLI
        from agent.core import RecommenderAgent

        return RecommenderAgent
    raise AttributeError(name)
