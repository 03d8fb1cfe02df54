"""`marquee bench explain`'s runtime comparison (benchmarks/explain.py): llama.cpp and torch paired reply by reply."""
from __future__ import annotations

from benchmarks.explain import Measured, runtime_figures


def _run(name: str, seconds: list[float], drafts: list[str]) -> Measured:
    m = Measured(name)
    m.first, m.all = [s / 4 for s in seconds], list(seconds)
    m.replies = [[(None, d, "llm", d, False)] for d in drafts]
    return m


def test_the_runtimes_are_compared_reply_by_reply():
    fast = _run("lora_constrained", [1.0, 2.0, 1.5, 3.0], ["a", "b", "c", "d"])
    slow = _run("lora_constrained_torch", [2.0, 3.0, 3.5, 4.0], ["a", "b", "x", "d"])
    got = runtime_figures(fast, slow)
    assert got["replies"] == 4
    assert got["all_explanations_s"]["torch_minus_llama_cpp_mean"] == 1.25
    low, high = got["all_explanations_s"]["ci95"]
    assert 1.0 <= low <= 1.25 <= high <= 2.0  # every reply is 1-2 s faster: the interval holds only gains
    assert got["all_explanations_s"]["speedup_of_sums"] == round(12.5 / 7.5, 2)
    assert got["drafts_alike"] == 0.75
