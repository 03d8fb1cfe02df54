"""Single-threaded math on the request path.

One request needs tiny products: a (1 × n) @ (n × n) collaborative score, one short query through
MiniLM. Spread over two threads on a busy 2-core machine they get *slower*, by two orders of
magnitude (measured here at load 15: MiniLM query 200–800 ms with 2 torch threads, 22 ms with 1;
the EASE product 24 ms with 2 OpenBLAS threads, 0.1 ms with 1). Thread pools are process-wide, so
the limits are taken under a lock and restored afterwards (batch work such as indexing keeps them).
"""
from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from functools import lru_cache

_BLAS_LOCK = threading.Lock()
_TORCH_LOCK = threading.Lock()


@lru_cache(maxsize=1)
def _blas_controller():
    from threadpoolctl import ThreadpoolController

    return ThreadpoolController()


@contextmanager
def single_threaded_blas() -> Iterator[None]:
    with _BLAS_LOCK, _blas_controller().limit(limits=1, user_api="blas"):
        yield


@contextmanager
def single_threaded_torch() -> Iterator[None]:
    import torch

    with _TORCH_LOCK:
        before = torch.get_num_threads()
        torch.set_num_threads(1)
        try:
            yield
        finally:
            torch.set_num_threads(before)
