"""Evaluation: metrics, the protocol as configuration, the harness, its rankers and the report
(docs/ARCHITECTURE.md §6)."""
