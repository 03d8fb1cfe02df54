"""OpenAI-compatible completions backend (vLLM `--enable-lora`, base model + our adapter as a served model name).

Ranking reads the label tokens from the returned `logprobs.top_logprobs` of ONE generated token per prompt
(all prompts of a batch in one request); a label the server did not list gets a floor just below the least likely
listed token. Generation and streaming use the same endpoint. Prompts are built locally with the model's own
tokenizer (same chat template and labels as local inference and fine-tuning).
"""
from __future__ import annotations

import os
from collections.abc import Iterator, Sequence

import numpy as np

from agent.llm.prompting import RerankPrompt

TOP_LOGPROBS = 20  # vLLM's default --max-logprobs
MISSING_LABEL_GAP = 1.0  # nats below the least likely listed token


class EndpointError(RuntimeError):
    """The OpenAI-compatible server could not be used; the message names it and the fix."""


class RemoteBackend:
    def __init__(self, base_url: str, model: str, tokenizer, api_key: str | None = None, timeout_s: float = 60.0,
                 top_logprobs: int = TOP_LOGPROBS):
        from openai import OpenAI

        self.client = OpenAI(base_url=base_url.rstrip("/"), api_key=api_key or os.environ.get("OPENAI_API_KEY")
                             or "EMPTY", timeout=timeout_s, max_retries=1)
        self.model = model
        self.model_id = f"{model}@{base_url}"
        self.tokenizer = tokenizer
        self.top_logprobs = top_logprobs

    @classmethod
    def from_config(cls, llm_cfg, home) -> "RemoteBackend":
        from transformers import AutoTokenizer

        from agent.llm.loading import resolve_model_path

        tokenizer = AutoTokenizer.from_pretrained(resolve_model_path(llm_cfg.model, home), trust_remote_code=False)
        return cls(llm_cfg.endpoint, llm_cfg.endpoint_model or llm_cfg.model, tokenizer)

    def _complete(self, **request):
        import openai

        try:
            return self.client.completions.create(model=self.model, temperature=0.0, **request)
        except openai.APIConnectionError as exc:
            raise EndpointError(f"cannot reach the LLM endpoint {self.client.base_url} ({exc}). Start the server "
                                "(e.g. `vllm serve MODEL --enable-lora`) or unset MARQUEE_LLM__ENDPOINT to use "
                                "the local model.") from exc
        except openai.APIStatusError as exc:
            raise EndpointError(f"LLM endpoint {self.client.base_url} refused the request for model "
                                f"{self.model!r}: HTTP {exc.status_code} {exc.message}") from exc

    def label_logprobs(self, prompts: Sequence[RerankPrompt]) -> list[np.ndarray]:
        response = self._complete(prompt=[p.text for p in prompts], max_tokens=1, logprobs=self.top_logprobs)
        choices = sorted(response.choices, key=lambda c: c.index)
        if len(choices) != len(prompts):
            raise RuntimeError(f"{self.model_id} returned {len(choices)} choices for {len(prompts)} prompts")
        out = []
        for prompt, choice in zip(prompts, choices):
            if choice.logprobs is None or not choice.logprobs.top_logprobs:
                raise RuntimeError(f"{self.model_id} returned no logprobs; the server must support `logprobs`")
            top = {token.strip(): lp for token, lp in choice.logprobs.top_logprobs[0].items()}
            floor = min(top.values()) - MISSING_LABEL_GAP
            out.append(np.array([top.get(label, floor) for label in prompt.labels], dtype=np.float64))
        return out

    def generate(self, texts: Sequence[str], max_new_tokens: int) -> list[tuple[str, bool]]:
        response = self._complete(prompt=list(texts), max_tokens=max_new_tokens)
        choices = sorted(response.choices, key=lambda c: c.index)
        return [(c.text.strip(), c.finish_reason == "stop") for c in choices]

    def stream(self, text: str, max_new_tokens: int) -> Iterator[str]:
        for chunk in self._complete(prompt=text, max_tokens=max_new_tokens, stream=True):
            if chunk.choices and chunk.choices[0].text:
                yield chunk.choices[0].text
