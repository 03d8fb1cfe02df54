"""Token-by-token streaming of one generation, as a plain Python generator of text deltas.

`generate` runs in a worker thread that feeds a transformers `TextIteratorStreamer`; the caller's loop receives
each decoded piece as soon as it exists (the CLI prints it, the Gradio page appends it). The model lock is held
by the worker for the whole generation, so concurrent users queue instead of corrupting each other's state.
"""
from __future__ import annotations

import threading
import time
from collections.abc import Iterator

from agent.llm.prompting import encode, render_chat


def stream_text(backend, text: str, max_new_tokens: int = 128, timeout_s: float = 120.0) -> Iterator[str]:
    """Greedy continuation of `text` as text deltas (local transformers backend or a remote backend)."""
    if hasattr(backend, "stream"):  # remote: the server streams
        yield from backend.stream(text, max_new_tokens)
        return
    import torch
    from transformers import TextIteratorStreamer

    llm = backend.llm
    streamer = TextIteratorStreamer(backend.tokenizer, skip_prompt=True, skip_special_tokens=True,
                                    timeout=timeout_s)
    ids = torch.tensor([encode(backend.tokenizer, text)], device=llm.device)
    failure: list[BaseException] = []

    def work() -> None:
        try:
            with llm.using(getattr(backend, "adapter", None)), torch.inference_mode():
                llm.model.generate(input_ids=ids, attention_mask=torch.ones_like(ids), max_new_tokens=max_new_tokens,
                                   do_sample=False, streamer=streamer, pad_token_id=backend.tokenizer.pad_token_id)
        except BaseException as exc:  # surfaced in the caller's thread below
            failure.append(exc)
            streamer.end()

    worker = threading.Thread(target=work, name="llm-stream", daemon=True)
    worker.start()
    try:
        for delta in streamer:
            if delta:
                yield delta
    finally:
        worker.join()
    if failure:
        raise failure[0]


def stream_prompt(backend, prompt_name: str, max_new_tokens: int = 128, **fields) -> Iterator[str]:
    """Fill prompts/<prompt_name>.txt, wrap it for the model and stream the reply."""
    return stream_text(backend, render_chat(backend.tokenizer, prompt_name, **fields), max_new_tokens)


def first_token_latency(deltas: Iterator[str]) -> tuple[float, str]:
    """Seconds until the first delta, and the whole text (drains the generator)."""
    start = time.perf_counter()
    first = None
    parts = []
    for delta in deltas:
        if first is None:
            first = time.perf_counter() - start
        parts.append(delta)
    return (first if first is not None else float("nan")), "".join(parts)
