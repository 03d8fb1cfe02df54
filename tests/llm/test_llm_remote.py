"""The OpenAI-compatible backend against a real HTTP server on 127.0.0.1 speaking the completions JSON shape."""
from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import numpy as np
import pytest

from agent.llm.prompting import UserSummary
from agent.llm.remote import RemoteBackend
from agent.llm.reranker import LLMReranker
from agent.llm.streaming import stream_text


class CompletionsServer(ThreadingHTTPServer):
    """Answers /v1/completions like vLLM: label logprobs keyed on a word found in each prompt, fixed text."""

    def __init__(self):
        super().__init__(("127.0.0.1", 0), Handler)
        self.requests: list[dict] = []
        self.preferred = "C"

    def top_logprobs(self, prompt: str) -> dict[str, float]:
        # the label whose candidate line mentions "Alien" is most likely, another label next, plus non-labels
        line = next((ln for ln in prompt.splitlines() if "Alien" in ln), None)
        best = line.split(".", 1)[0] if line else self.preferred
        return {best: -0.2, "B" if best != "B" else "A": -2.5, " The": -3.0, "\n": -4.0}


class Handler(BaseHTTPRequestHandler):
    def log_message(self, *args):  # keep pytest output clean
        pass

    def do_POST(self):
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        self.server.requests.append({"path": self.path, **body})
        prompts = body["prompt"] if isinstance(body["prompt"], list) else [body["prompt"]]
        if body.get("stream"):
            self.send_response(200)
            self.send_header("Content-Type", "text/event-stream")
            self.end_headers()
            for piece in ["It is ", "a sci-fi ", "classic."]:
                chunk = {"id": "c1", "object": "text_completion", "created": 0, "model": body["model"],
                         "choices": [{"index": 0, "text": piece, "logprobs": None, "finish_reason": None}]}
                self.wfile.write(f"data: {json.dumps(chunk)}\n\n".encode())
            self.wfile.write(b"data: [DONE]\n\n")
            return
        choices = []
        for i, prompt in enumerate(prompts):
            logprobs = None
            if body.get("logprobs"):
                top = self.server.top_logprobs(prompt)
                token = max(top, key=top.get)
                logprobs = {"tokens": [token], "token_logprobs": [top[token]], "top_logprobs": [top],
                            "text_offset": [0]}
            text = "A grounded sentence." if body.get("max_tokens", 16) > 1 else max(self.server.top_logprobs(prompt))
            choices.append({"index": i, "text": text, "logprobs": logprobs,
                            "finish_reason": "stop" if body.get("max_tokens", 16) > 1 else "length"})
        payload = {"id": "cmpl-1", "object": "text_completion", "created": 0, "model": body["model"],
                   "choices": choices, "usage": {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2}}
        data = json.dumps(payload).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)


@pytest.fixture
def server():
    srv = CompletionsServer()
    thread = threading.Thread(target=srv.serve_forever, daemon=True)
    thread.start()
    yield srv
    srv.shutdown()
    srv.server_close()


@pytest.fixture
def remote(server, llm):
    host, port = server.server_address
    return RemoteBackend(f"http://{host}:{port}/v1", "smollm2-lora", llm.tokenizer)


def test_remote_ranking_reads_label_logprobs(server, remote):
    ranker = LLMReranker(remote, weight=1.0, calibrate=False)
    lists = [["Heat (1995)", "Fargo (1996)", "Alien (1979)", "Babe (1995)"],
             ["Alien (1979)", "Heat (1995)", "Fargo (1996)"]]
    scores = ranker.llm_scores([UserSummary(request="space horror"), UserSummary()], lists)
    assert [int(np.argmax(s)) for s in scores] == [2, 0]
    for s, cands in zip(scores, lists):
        assert s.shape == (len(cands),) and np.exp(s).sum() == pytest.approx(1.0)
    request = server.requests[-1]
    assert request["path"] == "/v1/completions" and request["model"] == "smollm2-lora"
    assert request["max_tokens"] == 1 and request["logprobs"] == 20 and len(request["prompt"]) == 2
    assert request["prompt"][0].endswith("<|im_start|>assistant\n") and "C. Alien (1979)" in request["prompt"][0]


def test_labels_missing_from_top_logprobs_get_a_floor(server, remote):
    ranker = LLMReranker(remote, weight=1.0, calibrate=False)
    got = ranker.llm_scores([UserSummary()], [["Alien (1979)", "Heat (1995)", "Fargo (1996)", "Babe (1995)"]])[0]
    # A listed at -0.2, B at -2.5; C and D unlisted → equal, below everything listed
    assert got[0] > got[1] > got[2] and got[2] == pytest.approx(got[3])


def test_remote_calibration_uses_the_content_free_prompt(server, remote):
    ranker = LLMReranker(remote, weight=1.0, calibrate=True)
    ranker.llm_scores([UserSummary()], [["Heat (1995)", "Alien (1979)", "Fargo (1996)"]])
    assert any("A. N/A" in p for r in server.requests for p in r["prompt"])


def test_remote_generation_and_streaming(server, remote):
    assert remote.generate(["Explain.", "Explain again."], 32) == [("A grounded sentence.", True)] * 2
    deltas = list(stream_text(remote, "Tell me about Alien.", 16))
    assert deltas == ["It is ", "a sci-fi ", "classic."]
    assert server.requests[-1]["stream"] is True


def test_unreachable_server_raises_a_clear_error(llm):
    from agent.llm.remote import EndpointError

    backend = RemoteBackend("http://127.0.0.1:9/v1", "m", llm.tokenizer, timeout_s=2)
    with pytest.raises(EndpointError, match="cannot reach the LLM endpoint.*MARQUEE_LLM__ENDPOINT"):
        backend.generate(["x"], 4)
