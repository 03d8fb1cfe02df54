"""Errors for catalog and interaction files: always name the file, the line and the problem."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class RowProblem:
    path: Path
    line: int  # 1-based line number in the file (the header is line 1 for CSV/TSV)
    problem: str

    def __str__(self) -> str:
        return f"{self.path}:{self.line}: {self.problem}"


class CatalogError(ValueError):
    """A catalog or interaction file could not be loaded; nothing was half-loaded."""

    def __init__(self, message: str, problems: list[RowProblem] | None = None):
        self.problems = problems or []
        if self.problems:
            shown = "\n".join(f"  {p}" for p in self.problems[:20])
            more = f"\n  … and {len(self.problems) - 20} more" if len(self.problems) > 20 else ""
            message = f"{message}\n{shown}{more}"
        super().__init__(message)
