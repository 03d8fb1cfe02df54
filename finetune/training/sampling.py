"""Candidate sentences for the explainer's self-training: several samples per case from a model (the base model in
round 1, the trained adapter in round 2, or the adapter a run starts from), and optionally the draft served
decoding writes with its steps back (expert iteration), appended to a JSONL file batch by batch, so a stopped run
resumes where it was.

The base model samples with two worked examples in front of the prompt (`teacher` prompt,
finetune/data/explain_shots.py): zero-shot, a 135M model rarely writes a usable sentence. The adapter samples with
the serving prompt alone (what it was trained on). Either way the kept samples are trained with the serving prompt.
"""
from __future__ import annotations

import json
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from agent.llm.explainer import MIN_TOKEN_LOGPROB, finish_text
from agent.llm.generation import PrefixCache, Sampling, generate_rows
from agent.llm.pick_facts import describe_fields, explain_fields
from agent.llm.prompting import constant_prefix, render_chat
from finetune.data.explain_cases import DescribeCase, ExplainCase
from finetune.data.explain_shots import choose, first_kind, shots
from retrieval.catalog.schema import Catalog
from retrieval.evidence import Evidence

MAX_CHARS = 400  # a sample over this is no sentence of 12–40 words
MAX_SENTENCES = 2


@dataclass(frozen=True)
class Prompted:
    case_id: str
    task: str  # "explain" | "describe"
    text: str  # the prompt the model continues
    prefix: str  # its constant head (shared by a batch)


def task_of(case: ExplainCase | DescribeCase) -> str:
    return "describe" if isinstance(case, DescribeCase) else "explain"


def serving_fields(case: ExplainCase | DescribeCase, catalog: Catalog) -> dict[str, str]:
    """The {fields} of the case's serving prompt (prompts/explain.txt or prompts/describe.txt)."""
    if isinstance(case, DescribeCase):
        return describe_fields(catalog[case.item_id], Evidence.model_validate(case.evidence))
    return explain_fields(case.context(catalog))


def prompt_for(case: ExplainCase | DescribeCase, catalog: Catalog, tokenizer, teacher: bool) -> Prompted:
    """The case's prompt: the serving prompt, with two worked examples in front when `teacher`."""
    task = task_of(case)
    examples = []
    if teacher:
        evidence = Evidence.model_validate(case.evidence)
        kind = "audience" if task == "describe" and evidence.connections else first_kind(evidence)
        examples = choose(shots(task, catalog), kind, case.case_id)
    fields = serving_fields(case, catalog)
    return Prompted(case.case_id, task, render_chat(tokenizer, task, examples=examples, **fields),
                    constant_prefix(tokenizer, task, examples=examples))


def done_cases(path: Path) -> set[str]:
    if not Path(path).is_file():
        return set()
    return {json.loads(line)["case_id"] for line in Path(path).read_text(encoding="utf-8").splitlines() if line.strip()}


def read_samples(path: Path) -> list[dict]:
    if not Path(path).is_file():
        return []
    return [json.loads(line) for line in Path(path).read_text(encoding="utf-8").splitlines() if line.strip()]


def case_constraints(checker, catalog: Catalog, cases: Sequence[ExplainCase | DescribeCase]) -> list:
    """One claim constraint per case, from its pick and stored evidence (agent/llm/constrained.py)."""
    from agent.llm.constrained import ClaimConstraint

    return [ClaimConstraint.for_pick(checker, catalog[c.item_id], Evidence.model_validate(c.evidence)) for c in cases]


def sample_cases(llm, cases: Sequence[ExplainCase | DescribeCase], catalog: Catalog, out: Path, *, samples: int,
                 temperature: float, top_p: float, teacher: bool, adapter: str | None, round_no: int,
                 batch_cases: int = 8, max_new_tokens: int = 64, seed: int = 0,
                 progress: Callable[[int, int, float], None] | None = None,
                 deadline: float | None = None, checker=None, steps_back: int = 0) -> int:
    """Append `samples` candidates for every case not yet in `out`; returns how many cases were sampled now.
    Cases are grouped by their constant prompt head, so each batch computes that head once (then drops it).
    With a claim `checker`, decoding is claim-constrained (agent/llm/constrained.py): each case's sample may only
    spell what its evidence supports; `steps_back` > 0 (with a checker) adds one more row per case, the draft of
    served decoding (greedy, stepping back from dead ends, agent/llm/lookahead.py; `"search": true`)."""
    if steps_back and checker is None:
        raise ValueError("steps_back needs claim-constrained decoding: a row steps back only from a constrained "
                         "dead end ([finetune.explain] constrained = true)")
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    done = done_cases(out)
    todo = [c for c in cases if c.case_id not in done]
    prompted = [prompt_for(c, catalog, llm.tokenizer, teacher) for c in todo]
    by_id = {c.case_id: c for c in todo}
    groups: dict[str, list[Prompted]] = {}
    for p in prompted:
        groups.setdefault(p.prefix, []).append(p)
    model_id = llm.adapter_id(adapter)
    finished_cases, started = 0, time.perf_counter()
    for prefix, members in groups.items():
        cache = PrefixCache()  # one head at a time: a teacher head is ~850 tokens of keys and values
        for at in range(0, len(members), batch_cases):
            if deadline is not None and time.perf_counter() > deadline:
                return finished_cases
            batch = members[at:at + batch_cases]
            sampling = Sampling(temperature=temperature, top_p=top_p, samples=samples,
                                seed=seed + round_no * 100_003 + len(done) + finished_cases)
            rows = []
            constrained = [by_id[p.case_id] for p in batch]
            limits = case_constraints(checker, catalog, constrained) if checker is not None else None
            runs = [(sampling, limits, 0)]
            if steps_back:  # fresh constraints: a row's state is its own
                runs.append((Sampling(floor=MIN_TOKEN_LOGPROB, backtracks=steps_back),
                             case_constraints(checker, catalog, constrained), samples))
            for how, row_limits, first in runs:
                for g in generate_rows(llm, [p.text for p in batch], max_new_tokens, prefix=prefix, sampling=how,
                                       adapter=adapter, cache=cache, constraints=row_limits):
                    p = batch[g.row]
                    text = finish_text(g.text, g.finished, MAX_CHARS, MAX_SENTENCES)
                    rows.append({"case_id": p.case_id, "task": p.task, "round": round_no, "sample": first + g.sample,
                                 "text": text, "raw": g.text, "finished": g.finished, "model": model_id,
                                 "teacher": teacher, "temperature": how.temperature,
                                 "constrained": row_limits is not None, "search": bool(first),
                                 "worst_logprob": round(g.worst_logprob, 3)})
            rows.sort(key=lambda r: (r["case_id"], not r["search"], r["sample"]))  # selection keeps the first
            with out.open("a", encoding="utf-8") as f:  # whole cases per append: a crash loses one batch at most
                f.write("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows))
            finished_cases += len(batch)
            if progress:
                progress(finished_cases, len(todo), time.perf_counter() - started)
    return finished_cases
