"""Evaluation: metrics, the protocol as configuration, the harness, its rankers and the report (DESIGN §6)."""
