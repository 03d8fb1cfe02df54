"""`marquee finetune --task explain`: the explainer's LoRA adapter by rejection sampling (self-training).

Round 1: the base model samples `samples` sentences per case (a train-split (request, pick, evidence) case, or an
item to describe) with two worked examples in front of the prompt (finetune/training/sampling.py); the claim checker
(agent/llm/claims.py) and the selection rules (finetune/training/selection.py) keep the supported, distinct ones;
a LoRA adapter learns to write them from the serving prompt alone (finetune/training/lm.py). Round 2 and later: the
trained adapter samples new cases with the serving prompt, the kept ones join the training set, and training
continues from the adapter. After each round the adapter writes one greedy sentence for each validation case
(train-split cases never sampled for training) and the claim checker's pass rate is recorded.

Expert iteration (`start_from`, `steps_back`): a run may start from a trained adapter (round 1 then samples from it
with the serving prompt) and give each case, besides its samples, the draft served decoding writes by stepping back
from dead ends (agent/llm/lookahead.py); trained on the drafts that pass, the adapter learns to write without the
search what the search finds.

Everything is resumable: cases, samples (appended per batch), kept sets and each round's adapter are files in the
run folder, and the LoRA training keeps checkpoints. Outputs (`--ship` copies them to <home>/adapters/explain/):
adapter_model.safetensors + adapter_config.json, marquee.json (prompts, rounds, figures), README.md (model card),
training_curve.png. `marquee bench explain` measures the adapter on held-out users' triples.
"""
from __future__ import annotations

import datetime as dt
import json
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict
from pathlib import Path
from typing import Any

import numpy as np

from finetune.training.tasks import Task

SHIPPED = ("adapter_model.safetensors", "adapter_config.json", "marquee.json", "README.md", "training_curve.png")
QUICK = dict(train_replies=4, train_items=6, cases_per_round=[6, 6], items_per_round=[2, 2], samples=2,
             temperature=[0.7, 0.8], max_new_tokens=24, validation_cases=4, lora_layers=2, epochs=1.0,
             batch_size=2, eval_every=2, batch_cases=4)


class ExplainTask(Task):
    name = "explain"
    description = "the explainer's adapter: rejection-sampled sentences that pass the claim checker"
    slot = "explain"
    shipped_files = SHIPPED
    quick_overlay = {"explain": QUICK}

    def check(self, settings) -> None:
        cfg = settings.finetune.explain
        if cfg.lora_layers and cfg.lora_layers < 1:
            raise ValueError("[finetune.explain] lora_layers must be ≥ 1 (or 0 = every layer)")

    def run(self, settings, dataset, home: Path, out: Path, resume: bool = False, command: str = "",
            log: Callable[[str], None] = print, progress: bool = True, data_only: bool = False) -> list[str]:
        if data_only:
            raise ValueError("--data-only applies to --task rerank (it fits the reranker's retrievers and teachers)")
        run = SelfTraining(settings, dataset, Path(home), Path(out), log=log, progress=progress, command=command)
        return run.run(resume=resume)


class SelfTraining:
    def __init__(self, settings, dataset, home: Path, out: Path, log: Callable[[str], None] = print,
                 progress: bool = True, command: str = ""):
        self.settings = settings
        self.cfg = settings.finetune.explain
        self.seed = settings.finetune.seed
        self.dataset = dataset
        self.catalog = dataset.catalog
        self.home = home
        self.out = out
        self.log = log
        self.progress = progress
        self.command = command
        self.started = time.perf_counter()
        self.deadline = self.started + settings.finetune.max_minutes * 60

    # ------------------------------------------------------------------ data
    def cases(self):
        from finetune.data.explain_cases import build_cases, build_describe_cases, read_cases, write_cases

        path, items = self.out / "cases.jsonl", self.out / "describe_cases.jsonl"
        if not path.is_file():
            self.log(f"writing {self.cfg.train_replies} chat replies on the train split (explanation cases)")
            write_cases(build_cases(self.settings, self.dataset, train_replies=self.cfg.train_replies,
                                    heldout_replies=0, seed=self.seed, heldout_users=self.cfg.heldout_users,
                                    log=self.log), path)
        if not items.is_file():
            write_cases(build_describe_cases(self.dataset, self.cfg.train_items, self.cfg.heldout_items,
                                             seed=self.seed), items)
        cases = [c for c in read_cases(path) if c.split == "train"]
        described = [c for c in read_cases(items) if c.split == "train"]
        return cases, described

    def plan(self, cases: Sequence, described: Sequence) -> tuple[list, list[list]]:
        """(validation cases, the cases each round samples): disjoint, from one seeded order."""
        order = [cases[i] for i in np.random.default_rng([self.seed, 11]).permutation(len(cases))]
        validation, rest = order[:self.cfg.validation_cases], order[self.cfg.validation_cases:]
        items = [described[i] for i in np.random.default_rng([self.seed, 12]).permutation(len(described))]
        rounds, at, at_items = [], 0, 0
        for n, m in zip(self.cfg.cases_per_round, self.cfg.items_per_round):
            rounds.append(rest[at:at + n] + items[at_items:at_items + m])
            at, at_items = at + n, at_items + m
        return validation, rounds

    # ------------------------------------------------------------------ the loop
    def run(self, resume: bool) -> list[str]:
        from agent.llm.claims import ClaimChecker
        from agent.llm.loading import LoadedModel, base_model_id
        from finetune.training.model import load_base
        from finetune.training.sampling import read_samples, sample_cases
        from finetune.training.selection import SelectionRules, select, template_texts

        self.out.mkdir(parents=True, exist_ok=True)
        start = self._start_adapter()
        if start is not None:  # continuing an adapter: its LoRA shape, whatever the config (or --quick) says
            theirs = json.loads((start / "adapter_config.json").read_text(encoding="utf-8"))
            layers = theirs.get("layers_to_transform") or []
            self.cfg = self.cfg.model_copy(update={
                "lora_rank": theirs["r"], "lora_alpha": theirs["lora_alpha"],
                "target_modules": sorted(theirs["target_modules"]), "lora_layers": len(layers)})
        cases, described = self.cases()
        validation, rounds = self.plan(cases, described)
        by_id = {c.case_id: c for c in [*cases, *described]}
        checker = ClaimChecker(self.catalog)
        templates = template_texts(cases, self.catalog)
        rules = SelectionRules(keep_per_case=self.cfg.keep_per_case)
        base = load_base(self.settings, self.home, self.settings.finetune)
        tokenizer = base.tokenizer
        peft_model = self._attach_lora(base.model)
        started_from = self._start_from(peft_model, start)
        llm = LoadedModel(model=peft_model, tokenizer=tokenizer, name=base.name, device=base.device, dtype=base.dtype)
        kept_all: list = []
        reports: list[dict[str, Any]] = []
        # a fresh LoRA starts at zero, so the model is still the base model: its pass rate with the serving prompt
        base_rate = self._validate(llm, validation, checker, self.out / "round0")  # or the adapter started from
        curve: list[dict] = [{"round": 0, "step": 0, "validation_pass_rate": base_rate["pass_rate"]}]
        step_offset = 0
        for r, members in enumerate(rounds, start=1):
            folder = self.out / f"round{r}"
            samples_path = folder / "samples.jsonl"
            teacher = r == 1 and started_from is None
            todo = list(members) + (list(validation) if r == 1 else [])  # validation loss: its kept samples
            self.log(f"round {r}: sampling {self.cfg.samples} sentences"
                     f"{' and the served draft (steps back)' if self.cfg.steps_back else ''} for {len(todo)} cases "
                     f"with {'the base model + worked examples' if teacher else 'the adapter'}")
            with peft_model.disable_adapter() if teacher else _nothing():
                sample_cases(llm, todo, self.catalog, samples_path, samples=self.cfg.samples,
                             temperature=self.cfg.temperature[r - 1], top_p=self.cfg.top_p, teacher=teacher,
                             adapter=None, round_no=r, batch_cases=self.cfg.batch_cases,
                             max_new_tokens=self.cfg.max_new_tokens, seed=self.seed, progress=self._progress(r),
                             checker=checker if self.cfg.constrained else None, steps_back=self.cfg.steps_back)
            samples = read_samples(samples_path)
            training = {c.case_id for c in members}
            kept, report = select([s for s in samples if s["case_id"] in training], by_id, self.catalog, checker,
                                  rules, templates)
            held, held_report = select([s for s in samples if s["case_id"] not in training], by_id, self.catalog,
                                       checker, rules, templates) if r == 1 else ([], None)
            if r == 1:
                self.validation_kept = held
            kept_all += kept
            _write_jsonl(folder / "kept.jsonl", [asdict(k) for k in kept])
            self.log(f"round {r}: {report.passed} of {report.samples} samples passed the claim check "
                     f"({report.as_dict()['pass_rate']:.1%}); kept {len(kept)} (training set now {len(kept_all)})")
            if len(kept_all) < self.cfg.batch_size:
                raise ValueError(f"round {r}: only {len(kept_all)} sentence(s) passed the claim checker so far, fewer "
                                 f"than one batch of {self.cfg.batch_size}: nothing to train on. Sample more "
                                 "([finetune.explain] samples, cases_per_round) or use a smaller batch_size.")
            step_offset, round_curve = self._train_round(r, peft_model, tokenizer, kept_all, by_id, step_offset,
                                                         resume)
            curve += round_curve
            passed = self._validate(llm, validation, checker, folder)
            curve.append({"round": r, "step": step_offset, "validation_pass_rate": passed["pass_rate"]})
            sampled_with = "base model + 2 worked examples" if teacher else (
                f"{'adapter started from' if r == 1 else 'round adapter'}, serving prompt"
                f"{', + served draft (steps back)' if self.cfg.steps_back else ''}")
            reports.append({"round": r, "sampled_with": sampled_with, "temperature": self.cfg.temperature[r - 1],
                            "selection": report.as_dict(), "training_examples": len(kept_all),
                            "validation": passed,
                            **({"validation_selection": held_report.as_dict()} if held_report else {})})
            (folder / "report.json").write_text(json.dumps(reports[-1], indent=1) + "\n", encoding="utf-8")
        return self._finish(peft_model, reports, curve, base_model_id(self.settings.llm.model), base_rate,
                            started_from)

    def _progress(self, r: int):
        def show(n: int, total: int, seconds: float) -> None:
            if n == total or n % (self.cfg.batch_cases * 10) == 0:
                self.log(f"round {r}: sampled {n}/{total} cases in {seconds / 60:.1f} min")
        return show

    def _start_adapter(self) -> Path | None:
        if not self.cfg.start_from:
            return None
        from agent.llm.loading import resolve_adapter

        path = resolve_adapter(self.cfg.start_from, self.home)
        if path is None:
            raise ValueError(f"[finetune.explain] start_from = {self.cfg.start_from!r}: no such adapter")
        return path

    def _start_from(self, peft_model, path: Path | None) -> dict | None:
        """Load the weights of the adapter the run continues into its fresh LoRA (shaped like it); that adapter's
        marquee.json (how it was trained) for the model card, or None when the run starts from the base model."""
        if path is None:
            return None
        from peft import set_peft_model_state_dict
        from safetensors.torch import load_file

        theirs = json.loads((path / "adapter_config.json").read_text(encoding="utf-8"))
        ours = peft_model.peft_config["default"]
        if theirs.get("r") != ours.r or set(theirs.get("target_modules") or ()) != set(ours.target_modules) or \
                theirs.get("layers_to_transform") != ours.layers_to_transform:
            raise ValueError(f"[finetune.explain] start_from = {self.cfg.start_from!r} ({path}) has rank "
                             f"{theirs.get('r')} on {theirs.get('target_modules')} of layers "
                             f"{theirs.get('layers_to_transform')}; this run's LoRA is rank {ours.r} on "
                             f"{sorted(ours.target_modules)} of layers {ours.layers_to_transform}: set lora_rank, "
                             "target_modules and lora_layers to match")
        loaded = set_peft_model_state_dict(peft_model, load_file(str(path / "adapter_model.safetensors")))
        if loaded.unexpected_keys:
            raise ValueError(f"{path}: {len(loaded.unexpected_keys)} weights fit no LoRA module of this run, e.g. "
                             f"{loaded.unexpected_keys[0]}")
        self.log(f"starting from the adapter at {path}")
        meta_path = path / "marquee.json"
        meta = json.loads(meta_path.read_text(encoding="utf-8")) if meta_path.is_file() else {}
        return {"adapter": self.cfg.start_from, "trained_at": meta.get("trained_at"),
                "rounds": meta.get("rounds", []), "started_from": meta.get("started_from")}

    def _attach_lora(self, model):
        from finetune.training.model import attach_lora

        cfg = self.settings.finetune.model_copy(update={
            "lora_rank": self.cfg.lora_rank, "lora_alpha": self.cfg.lora_alpha, "lora_dropout": self.cfg.lora_dropout,
            "lora_layers": self.cfg.lora_layers, "target_modules": list(self.cfg.target_modules)})
        peft_model = attach_lora(model, cfg)
        from agent.llm.loading import base_model_id

        peft_model.peft_config["default"].base_model_name_or_path = base_model_id(self.settings.llm.model)
        return peft_model

    def _examples(self, tokenizer, kept: Sequence, by_id):
        from agent.llm.prompting import render_chat
        from finetune.training.lm import lm_example
        from finetune.training.sampling import serving_fields

        return [lm_example(tokenizer, render_chat(tokenizer, k.task, **serving_fields(by_id[k.case_id], self.catalog)),
                           k.text, k.task) for k in kept]

    def _train_round(self, r: int, peft_model, tokenizer, kept: Sequence, by_id, offset: int, resume: bool):
        """Train on every kept sentence so far, from the current adapter; the round's best adapter (validation
        loss on the kept sentences of the validation cases) is loaded back. Skipped when the round finished."""
        from peft import set_peft_model_state_dict
        from safetensors.torch import load_file

        from finetune.training.lm import train_lm

        folder = self.out / f"round{r}"
        done = folder / "adapter" / "adapter_model.safetensors"
        if done.is_file():
            set_peft_model_state_dict(peft_model, load_file(str(done)))
            meta = json.loads((folder / "adapter" / "round.json").read_text())
            self.log(f"round {r}: adapter already trained ({meta['steps']} steps)")
            return offset + meta["steps"], meta["curve"]
        train = self._examples(tokenizer, kept, by_id)
        validation = self._examples(tokenizer, getattr(self, "validation_kept", []), by_id)
        self.log(f"round {r}: training on {len(train)} sentences ({len(validation)} for validation loss)")
        result = train_lm(peft_model, tokenizer, train, validation, folder / "train", epochs=self.cfg.epochs,
                          learning_rate=self.cfg.learning_rate, batch_size=self.cfg.batch_size,
                          lora_layers=self.cfg.lora_layers, eval_every=self.cfg.eval_every,
                          checkpoint_every=self.cfg.eval_every, seed=self.seed, threads=self.settings.finetune.threads,
                          resume=resume, curve_offset=offset, log=self.log, progress=self.progress,
                          deadline=self.deadline)
        best = folder / "train" / "best" / "adapter_model.safetensors"
        if best.is_file():
            set_peft_model_state_dict(peft_model, load_file(str(best)))
        peft_model.save_pretrained(folder / "adapter", save_embedding_layers=False)
        meta = {"steps": result.state.step, "best_step": result.state.best_step, "best_loss": result.state.best,
                "stopped": result.stopped, "seconds": round(result.seconds, 1), "curve": result.state.curve}
        (folder / "adapter" / "round.json").write_text(json.dumps(meta, indent=1) + "\n", encoding="utf-8")
        return offset + result.state.step, result.state.curve

    def _validate(self, llm, validation: Sequence, checker, folder: Path) -> dict[str, Any]:
        """One greedy sentence per validation case from the current adapter (serving prompt): the pass rate."""
        from agent.llm.explainer import Draft, finish_text
        from agent.llm.generation import Sampling, generate_rows
        from agent.llm.prompting import constant_prefix, render_chat
        from finetune.training.sampling import case_constraints, serving_fields, task_of
        from retrieval.evidence import Evidence

        path = folder / "validation.jsonl"
        if path.is_file():
            rows = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
        else:
            rows = []
            for task in ("explain", "describe"):
                members = [c for c in validation if task_of(c) == task]
                if not members:
                    continue
                texts = [render_chat(llm.tokenizer, task, **serving_fields(c, self.catalog)) for c in members]
                # as served (llm.explain_constrained)
                limits = case_constraints(checker, self.catalog, members) if self.cfg.constrained else None
                for g in generate_rows(llm, texts, self.cfg.max_new_tokens, prefix=constant_prefix(llm.tokenizer, task),
                                       sampling=Sampling(), constraints=limits):
                    case = members[g.row]
                    text = finish_text(g.text, g.finished, 400, 2)
                    verdict = checker.check_claims(text or "", self.catalog[case.item_id],
                                                   Evidence.model_validate(case.evidence),
                                                   getattr(case, "asked_genres", ()))
                    problems = list(verdict.problems) + list(Draft(0, text, g.worst_logprob).fluency_problems())
                    rows.append({"case_id": case.case_id, "text": text, "ok": not problems,
                                 "personal": verdict.personal, "problems": problems})
            _write_jsonl(path, rows)
        passed = sum(r["ok"] for r in rows)
        result = {"cases": len(rows), "passed": passed, "pass_rate": round(passed / len(rows), 4) if rows else 0.0}
        self.log(f"validation: {passed} of {len(rows)} greedy sentences pass the claim check")
        return result

    # ------------------------------------------------------------------ outputs
    def _finish(self, peft_model, reports: list[dict], curve: list[dict], base_model: str,
                base_rate: dict, started_from: dict | None = None) -> list[str]:
        import prompts
        from finetune.training.card import machine
        from finetune.training.explain_card import write_explain_outputs

        meta = {"task": "explain", "prompts": {name: prompts.load(name).version for name in ("explain", "describe")},
                "base_model": base_model, "base_validation": base_rate, "rounds": reports,
                "started_from": started_from,
                "config": self.cfg.model_dump(),
                "trained_at": dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"), "machine": machine(),
                "minutes": round((time.perf_counter() - self.started) / 60, 1)}
        write_explain_outputs(self.out, peft_model, meta, curve, self.settings.catalog.source, self.command)
        last = reports[-1]
        start = "the adapter started from" if started_from else "base model"
        return [f"adapter: {self.out}", f"{start} (serving prompt): validation pass rate {base_rate['pass_rate']:.1%}",
                *(f"round {r['round']}: kept {r['selection']['kept']} of {r['selection']['samples']} samples "
                  f"(claim check {r['selection']['pass_rate']:.1%}); validation pass rate "
                  f"{r['validation']['pass_rate']:.1%}" for r in reports),
                f"training examples: {last['training_examples']}; {meta['minutes']} min"]


class _nothing:
    def __enter__(self):
        return None

    def __exit__(self, *exc):
        return False


def _write_jsonl(path: Path, rows: Sequence[dict]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")
    tmp.replace(path)
