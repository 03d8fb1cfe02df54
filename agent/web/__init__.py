"""The Gradio chat page (`marquee serve`): `build_app(agent)` builds it, `agent.web.server` serves it."""
from __future__ import annotations


def build_app(agent):  # lazy: importing gradio takes seconds, `marquee --help` must not pay for it
    from agent.web.app import build_app as _build

    return _build(agent)
