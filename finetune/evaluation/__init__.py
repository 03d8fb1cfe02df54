"""Evaluation: metrics, the harness, its rankers and the report (docs/ARCHITECTURE.md §6); the protocol's
configuration is the [eval] section, retrieval/config/eval.py."""
