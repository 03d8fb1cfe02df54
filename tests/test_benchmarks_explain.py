"""`marquee bench explain`'s paired comparisons (benchmarks/explain.py): llama.cpp and torch reply by reply, and the
served explainer with and without steps back pick by pick."""
from __future__ import annotations

from types import SimpleNamespace

from benchmarks.explain import Measured, paired_figures, runtime_figures


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


class _Checker:
    """Passes a draft that says "fine" (the gate's claim half; the fluency half is the draft's garbled flag)."""

    def check_claims(self, draft, item, evidence, asked_genres):
        return SimpleNamespace(ok="fine" in draft)


def test_steps_back_are_measured_pick_by_pick_against_the_same_explainer_without_them():
    cases = [SimpleNamespace(case_id=f"c{n}") for n in range(4)]
    contexts = {c.case_id: SimpleNamespace(item=None, evidence=None, asked_genres=()) for c in cases}
    served, ablation = Measured("lora_constrained"), Measured("lora_constrained_no_steps_back")
    served.replies = [[(cases[0], "", "llm", "fine", False), (cases[1], "", "llm", "fine", False)],
                      [(cases[2], "", "llm", "fine", False), (cases[3], "", "fallback", "bad", False)]]
    ablation.replies = [[(cases[0], "", "llm", "fine", False), (cases[1], "", "fallback", "fine b", True)],
                        [(cases[2], "", "fallback", None, False), (cases[3], "", "fallback", "bad", False)]]
    served.all, ablation.all = [2.0, 3.0], [1.5, 3.0]
    served.first, ablation.first = [1.0, 1.0], [1.0, 0.5]
    got = paired_figures(served, ablation, _Checker(), contexts)
    assert got["picks"] == 4
    assert got["pass_rate_gain"]["mean"] == 0.5  # a garbled draft and a missing one now pass
    low, high = got["pass_rate_gain"]["ci95"]
    assert 0.0 <= low <= 0.5 <= high <= 1.0
    assert got["all_explanations_s_added"]["mean"] == 0.25
    assert got["first_explanation_s_added"]["mean"] == 0.25
