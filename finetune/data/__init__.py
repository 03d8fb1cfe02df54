"""Training / evaluation data built from interaction logs."""
from finetune.data.splits import EvalCase, Split, leave_one_out

__all__ = ["EvalCase", "Split", "leave_one_out"]
