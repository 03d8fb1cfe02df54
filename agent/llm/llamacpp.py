"""Greedy generation of the embedded model on llama.cpp (llama-cpp-python): the decoding steps of explanations and
descriptions, ~3x faster than torch's on the 2-core CPU (`marquee bench explain`, `runtime` figures).

- Base weights: the embedded Q4_1 GGUF written once as BF16 by llama.cpp's own quantizer into
  `<home>/models/llama.cpp/`. BF16, because llama.cpp's prompt pass on Q4_1 is ~3x slower than torch's on this
  CPU, at BF16 it matches it; torch serves the same weights in bf16 (agent/llm/loading.py `choose_dtype`).
- LoRA adapters: each peft adapter written as a llama.cpp LoRA GGUF beside it, keyed by the hash of its weights.
  llama.cpp stores the q and k projections with their rows permuted per head (its converter's rotary layout), so
  the B matrices of q_proj and k_proj are permuted the same way.
- One context, one unified key/value cache: a row is a sequence; a prompt's constant head is decoded once per
  adapter into a sequence of its own and shared by every row that starts with it (`llama_memory_seq_cp` adds the
  row to the head's cells, it copies nothing).
- Sampling (fine-tuning's rejection sampling) and scoring stay on torch (agent/llm/generation.py).
"""
from __future__ import annotations

import ctypes
import hashlib
import json
import logging
import os
import re
import tempfile
import threading
from pathlib import Path

import numpy as np

from agent.llm.loading import EMBEDDED_NAMES, LoadedModel, embedded_gguf_path

log = logging.getLogger(__name__)

RUNTIMES = ("auto", "torch", "llama.cpp")
ROW_SEQUENCES = 12  # rows of one generation (a reply's picks, a batch of descriptions)
HEAD_SEQUENCES = 4  # constant prompt heads kept in the cache (per adapter and prompt)
CONTEXT_TOKENS = 4096  # the unified cache, all sequences together (a reply: ~3,000 with its heads)
_LORA_NAMES = {"q_proj": "attn_q", "k_proj": "attn_k", "v_proj": "attn_v", "o_proj": "attn_output",
               "gate_proj": "ffn_gate", "up_proj": "ffn_up", "down_proj": "ffn_down"}
_LORA_KEY = re.compile(r"layers\.(\d+)\.(?:self_attn|mlp)\.(\w+)\.lora_([AB])\.weight$")
_BF16 = 32  # llama_ftype LLAMA_FTYPE_MOSTLY_BF16


def available() -> bool:
    try:
        import llama_cpp  # noqa: F401
    except ImportError:
        return False
    return True


def _atomic(target: Path, write) -> Path:
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", dir=target.parent)
    os.close(fd)
    try:
        write(Path(tmp))
        os.replace(tmp, target)
    finally:
        Path(tmp).unlink(missing_ok=True)
    return target


def bf16_model(home: Path) -> Path:
    """The embedded model as a BF16 GGUF under `<home>/models/llama.cpp/` (written on first use, ~2 s)."""
    import llama_cpp as L

    source = embedded_gguf_path()
    target = Path(home) / "models" / "llama.cpp" / (source.stem.replace(".Q4_1", "") + ".bf16.gguf")
    if target.is_file() and target.stat().st_size > 0:
        return target

    def write(tmp: Path) -> None:
        params = L.llama_model_quantize_default_params()
        params.ftype, params.allow_requantize, params.nthread = _BF16, True, os.cpu_count() or 1
        if L.llama_model_quantize(str(source).encode(), str(tmp).encode(), ctypes.byref(params)) != 0:
            raise RuntimeError(f"llama.cpp could not write {source.name} as BF16")

    log.info("writing %s as BF16 for llama.cpp under %s (once)", source.name, target.parent)
    return _atomic(target, write)


def _permute_rows(matrix: np.ndarray, heads: int) -> np.ndarray:
    """llama.cpp's row order of a q/k projection: each head's rotary halves interleaved."""
    rows = matrix.shape[0]
    return matrix.reshape(heads, 2, rows // heads // 2, *matrix.shape[1:]).swapaxes(1, 2).reshape(matrix.shape)


def lora_gguf(adapter: Path, home: Path, heads: int, kv_heads: int) -> Path:
    """The peft adapter at `adapter` as a llama.cpp LoRA GGUF under `<home>/models/llama.cpp/`."""
    import gguf
    from safetensors.numpy import load_file

    weights = Path(adapter) / "adapter_model.safetensors"
    digest = hashlib.sha256(weights.read_bytes()).hexdigest()[:16]
    target = Path(home) / "models" / "llama.cpp" / f"lora-{digest}.gguf"
    if target.is_file() and target.stat().st_size > 0:
        return target
    config = json.loads((Path(adapter) / "adapter_config.json").read_text(encoding="utf-8"))

    def write(tmp: Path) -> None:
        writer = gguf.GGUFWriter(str(tmp), "llama")
        writer.add_type(gguf.GGUFType.ADAPTER)
        writer.add_string("adapter.type", "lora")
        writer.add_float32("adapter.lora.alpha", float(config["lora_alpha"]))
        for key, tensor in sorted(load_file(str(weights)).items()):
            m = _LORA_KEY.search(key)
            if m is None or m.group(2) not in _LORA_NAMES:
                raise ValueError(f"{adapter}: no llama.cpp tensor for {key!r}")
            layer, module, side = int(m.group(1)), m.group(2), m.group(3)
            tensor = tensor.astype(np.float32)
            if side == "B" and module in ("q_proj", "k_proj"):
                tensor = _permute_rows(tensor, heads if module == "q_proj" else kv_heads)
            writer.add_tensor(f"blk.{layer}.{_LORA_NAMES[module]}.weight.lora_{side.lower()}",
                              np.ascontiguousarray(tensor))
        writer.write_header_to_file()
        writer.write_kv_data_to_file()
        writer.write_tensors_to_file()
        writer.close()

    return _atomic(target, write)


class LlamaEngine:
    """The llama.cpp model and context of one process; every call holds the LoadedModel's lock (generation.py)."""

    def __init__(self, gguf_path: Path, home: Path, heads: int, kv_heads: int, threads: int | None = None):
        import llama_cpp as L

        self._L = L
        llama_log = logging.getLogger("llama-cpp-python")  # llama.cpp's own log: every tensor it loads, at INFO
        if llama_log.level == logging.NOTSET:
            llama_log.setLevel(logging.ERROR)
        L.llama_backend_init()
        self.home, self.heads, self.kv_heads = Path(home), heads, kv_heads
        self.model = L.llama_model_load_from_file(str(gguf_path).encode(), L.llama_model_default_params())
        if not self.model:
            raise RuntimeError(f"llama.cpp could not load {gguf_path}")
        params = L.llama_context_default_params()
        params.n_ctx, params.n_batch, params.n_ubatch = CONTEXT_TOKENS, CONTEXT_TOKENS, 512
        params.n_seq_max = ROW_SEQUENCES + HEAD_SEQUENCES
        params.n_threads = params.n_threads_batch = threads or os.cpu_count() or 1
        params.kv_unified = True
        self.ctx = L.llama_init_from_model(self.model, params)
        if not self.ctx:
            raise RuntimeError("llama.cpp could not create a context")
        self.memory = L.llama_get_memory(self.ctx)
        self.vocab = L.llama_vocab_n_tokens(L.llama_model_get_vocab(self.model))
        self.batch = L.llama_batch_init(CONTEXT_TOKENS, 0, 1)
        self._loras: dict[Path, object] = {}
        self._active: Path | None = None
        self._heads: dict[tuple, int] = {}  # (adapter, head tokens) -> sequence id, oldest first

    def use(self, adapter: Path | None) -> None:
        """Generate with the peft adapter at `adapter` (None: the base model)."""
        L = self._L
        if adapter == self._active:
            return
        if adapter is None:
            L.llama_set_adapters_lora(self.ctx, None, 0, None)
        else:
            if adapter not in self._loras:
                path = lora_gguf(adapter, self.home, self.heads, self.kv_heads)
                self._loras[adapter] = L.llama_adapter_lora_init(self.model, str(path).encode())
                if not self._loras[adapter]:
                    raise RuntimeError(f"llama.cpp could not load the adapter {adapter}")
            chosen = (L.llama_adapter_lora_p_ctypes * 1)(self._loras[adapter])
            L.llama_set_adapters_lora(self.ctx, chosen, 1, (ctypes.c_float * 1)(1.0))
        self._active = adapter

    def decode(self, items: list[tuple[int, int, int, bool]]) -> np.ndarray:
        """Decode (token, position, sequence, wants logits) items; the logits of those that want them, in order."""
        L, batch = self._L, self.batch
        wanted = []
        for i, (token, pos, seq, logits) in enumerate(items):
            batch.token[i], batch.pos[i], batch.n_seq_id[i], batch.logits[i] = token, pos, 1, logits
            batch.seq_id[i][0] = seq
            if logits:
                wanted.append(i)
        batch.n_tokens = len(items)
        code = L.llama_decode(self.ctx, batch)
        if code != 0:
            raise RuntimeError(f"llama.cpp decode failed ({code}): the key/value cache holds {CONTEXT_TOKENS} "
                               "tokens for all rows; shorten the prompts or generate fewer rows at once")
        return np.stack([np.ctypeslib.as_array(L.llama_get_logits_ith(self.ctx, i), shape=(self.vocab,)).copy()
                         for i in wanted]) if wanted else np.zeros((0, self.vocab), np.float32)

    def positions(self, seq: int) -> int:
        """How many positions sequence `seq` holds (0: none)."""
        return self._L.llama_memory_seq_pos_max(self.memory, seq) + 1

    def forget(self, seq: int) -> None:
        self._L.llama_memory_seq_rm(self.memory, seq, -1, -1)

    def forget_from(self, seq: int, position: int) -> None:
        self._L.llama_memory_seq_rm(self.memory, seq, position, -1)

    def fits(self, head: int, rows: list[int]) -> bool:
        """Whether rows of these most tokens each, after a head of `head` tokens, fit the cache beside the heads
        it keeps (a call that does not runs on torch)."""
        return len(rows) <= ROW_SEQUENCES and head * (HEAD_SEQUENCES + 1) + sum(rows) <= CONTEXT_TOKENS

    def head(self, head: list[int]) -> int | None:
        """The sequence holding `head` under the active adapter, decoded on first use; None for no head."""
        if not head:
            return None
        key = (self._active, tuple(head))
        if key not in self._heads:
            used = set(self._heads.values())
            if len(used) == HEAD_SEQUENCES:
                oldest = next(iter(self._heads))
                self.forget(self._heads.pop(oldest))
                used = set(self._heads.values())
            seq = next(s for s in range(ROW_SEQUENCES, ROW_SEQUENCES + HEAD_SEQUENCES) if s not in used)
            self.decode([(t, p, seq, False) for p, t in enumerate(head)])
            self._heads[key] = seq
        return self._heads[key]

    def start_rows(self, head_seq: int | None, start: int, tails: list[list[int]]) -> np.ndarray:
        """Rows 0..n-1 as the head followed by each tail; the last logits of each row."""
        if len(tails) > ROW_SEQUENCES:
            raise ValueError(f"{len(tails)} rows: llama.cpp generates at most {ROW_SEQUENCES} at once")
        for seq in range(len(tails)):
            self.forget(seq)
            if head_seq is not None:
                self._L.llama_memory_seq_cp(self.memory, head_seq, seq, -1, -1)
        return self.decode([(t, start + p, seq, p == len(tail) - 1)
                            for seq, tail in enumerate(tails) for p, t in enumerate(tail)])


class LlamaRows:
    """The rows of one greedy generation in the engine's cache, as lookahead.look_ahead drives them: `feed` each
    active row its tokens, `accept` how many of them it kept, `rewind` a row's last positions, `select` the rows that
    go on."""

    def __init__(self, engine: LlamaEngine, next_pos: list[int]):
        self.engine = engine
        self.seqs = list(range(len(next_pos)))
        self.next_pos = list(next_pos)
        self.fed: list[int] = [0] * len(next_pos)

    def feed(self, tokens: list[list[int]]):
        import torch

        items = [(t, self.next_pos[j] + i, self.seqs[j], True) for j, toks in enumerate(tokens)
                 for i, t in enumerate(toks)]
        flat = self.engine.decode(items)
        width = max(len(t) for t in tokens)
        out = torch.zeros((len(tokens), width, self.engine.vocab))
        at = 0
        for j, toks in enumerate(tokens):
            out[j, :len(toks)] = torch.from_numpy(flat[at:at + len(toks)])
            at += len(toks)
        self.fed = [len(t) for t in tokens]
        return out

    def accept(self, kept: list[int]) -> None:
        """Row j keeps the first kept[j] tokens it was fed; the rejected proposals leave its sequence."""
        for j, count in enumerate(kept):
            if count < self.fed[j]:
                self.engine.forget_from(self.seqs[j], self.next_pos[j] + count)
            self.next_pos[j] += count

    def rewind(self, j: int, count: int) -> None:
        """Row j gives back its last `count` positions."""
        self.next_pos[j] -= count
        self.engine.forget_from(self.seqs[j], self.next_pos[j])

    def select(self, going: list[int]) -> None:
        for j, seq in enumerate(self.seqs):
            if j not in going:
                self.engine.forget(seq)
        self.seqs = [self.seqs[j] for j in going]
        self.next_pos = [self.next_pos[j] for j in going]
        self.fed = [self.fed[j] for j in going]

    def close(self) -> None:
        for seq in self.seqs:
            self.engine.forget(seq)
        self.seqs = []


_ENGINES_LOCK = threading.Lock()


def engine_for(llm: LoadedModel) -> LlamaEngine | None:
    """The llama.cpp engine of `llm` (made on first use), or None where greedy generation runs on torch: its runtime
    is "torch", or "auto" and it is not the embedded model in bf16 on the CPU or llama-cpp-python is missing."""
    import torch

    runtime = llm.runtime
    if runtime not in RUNTIMES:
        raise ValueError(f"unknown generation runtime {runtime!r}; known: {', '.join(RUNTIMES)}")
    embedded_cpu = llm.name in EMBEDDED_NAMES and llm.device == "cpu"
    if runtime == "llama.cpp" and not embedded_cpu:
        raise ValueError("[llm] runtime = 'llama.cpp' needs the embedded model on the CPU "
                         f"(model {llm.name!r}, device {llm.device!r}); set runtime = 'torch' or 'auto'")
    if runtime == "llama.cpp" and not available():
        raise ImportError("[llm] runtime = 'llama.cpp' needs llama-cpp-python: run `make setup`, or set "
                          "runtime = 'torch'")
    if runtime == "torch" or (runtime == "auto" and not (embedded_cpu and llm.dtype == torch.bfloat16
                                                         and available())):
        return None
    with _ENGINES_LOCK:
        engine = llm.extras.get("llama.cpp")
        if engine is None:
            config = llm.model.config
            home = Path(llm.home or os.environ.get("MARQUEE_HOME") or ".")
            engine = LlamaEngine(bf16_model(home), home, config.num_attention_heads, config.num_key_value_heads)
            llm.extras["llama.cpp"] = engine
        return engine
