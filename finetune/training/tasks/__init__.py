"""Training tasks of `marquee finetune`, looked up by name in TASKS:
`--task rerank` trains the reranker's adapter, `--task explain` the explainer's. A task module owns what depends on
it (its data, its loop, its outputs, the shipped adapter slot it fills), so the command never branches on a name.

    from finetune.training.tasks import create_task
    task = create_task("explain")
    task.check(settings)                       # problems before any work (a ValueError)
    summary = task.run(settings, dataset, home, out, resume=False)   # lines for the terminal

Adding a task: a module here with a `Task` subclass that sets `name`, listed in TASKS below.
"""
from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable
from pathlib import Path
from typing import Any, ClassVar


class UnknownTaskError(ValueError):
    """A task name that is not in TASKS; the message lists the known ones."""


class Task(ABC):
    name: ClassVar[str] = ""
    description: ClassVar[str] = ""
    slot: ClassVar[str] = "default"  # the shipped adapter it makes: agent/llm/adapters/<slot>/, <home>/adapters/<slot>/
    # what `--ship` copies from a finished run (None: the reranker's files, finetune/training/trainer.py `ship`)
    shipped_files: ClassVar[tuple[str, ...] | None] = None
    quick_overlay: ClassVar[dict[str, Any]] = {}  # `--quick`: a tiny slice for CI

    def default_out(self, home: Path, quick: bool) -> Path:
        return Path(home) / "adapters" / (f"{self.name}-quick" if quick else f"{self.name}-run")

    def check(self, settings) -> None:
        """Raise ValueError for a configuration this task cannot run."""

    @abstractmethod
    def run(self, settings, dataset, home: Path, out: Path, resume: bool = False, command: str = "",
            log: Callable[[str], None] = print, progress: bool = True, data_only: bool = False) -> list[str]:
        """Train; write the adapter and its card into `out`; return summary lines. `data_only`: prepare the data
        and stop (ValueError where the task has no such step)."""


from finetune.training.tasks.explain import ExplainTask  # noqa: E402  (the task modules subclass Task)
from finetune.training.tasks.rerank import RerankTask  # noqa: E402

TASKS: dict[str, type[Task]] = {task.name: task for task in (RerankTask, ExplainTask)}


def task_class(name: str) -> type[Task]:
    try:
        return TASKS[name]
    except (KeyError, TypeError):
        raise UnknownTaskError(f"unknown task {name!r}; known tasks: {', '.join(sorted(TASKS))}") from None


def create_task(name: str) -> Task:
    return task_class(name)()
