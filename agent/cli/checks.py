"""`Check`: one row of `marquee doctor` (what was checked, what was found, the exact fix)."""
from __future__ import annotations

from dataclasses import dataclass


@dataclass
class Check:
    name: str
    ok: bool
    detail: str
    fix: str = ""
    required: bool = True

    def __post_init__(self) -> None:
        if self.ok:
            self.fix = ""  # a fix is only shown for what is wrong
