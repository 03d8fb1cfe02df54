"""Retrieval layer: catalog, sentence embeddings, Chroma store, candidate generators.

Imports nothing from `agent` or `finetune` (dependencies point one way).
"""
