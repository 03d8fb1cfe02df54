"""SASRec (Kang & McAuley, 2018) in plain torch: causal self-attention over a user's item sequence.

Trained with the full-softmax cross-entropy over every catalog item at every position of each train
sequence (so every prefix predicts its next item in one pass), seeded, with early stopping on the
validation NDCG@10. Fitted weights are cached under `<home>/models/sasrec-<hash>.safetensors` with a JSON
sidecar (config, curve, best epoch), keyed by the hyper-parameters and the exact training data, so a second
evaluation run loads instead of training. Nothing is unpickled: an old or unreadable cache is logged and retrained.
Weights for the default catalog's whole log (what the chat serves from) ship as package data in `pretrained/`
under the same key, so they are used only when the data and the parameters match exactly.
"""
from __future__ import annotations

import hashlib
import json
import logging
import math
import time
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from retrieval.catalog.schema import Catalog, Interactions
from retrieval.integrity import sha256
from retrieval.ranking import exclusion_mask, ndcg_at, target_ranks
from retrieval.recommender import Recommender, UserContext, register, take_candidates

log = logging.getLogger(__name__)

PAD = 0  # item index i is token i + 1
CACHE_FORMAT = 2  # 1 = a pickled torch.save file (.pt), never read again
PRETRAINED = Path(__file__).parent / "pretrained"  # package data: read-only weights, keyed like the cache


class CausalBlock(nn.Module):
    """Pre-norm transformer block; `allowed[b, q, k]` says which keys a query may attend to."""

    def __init__(self, hidden: int, heads: int, dropout: float):
        super().__init__()
        self.heads, self.dropout = heads, dropout
        self.norm1, self.norm2 = nn.LayerNorm(hidden), nn.LayerNorm(hidden)
        self.qkv, self.out = nn.Linear(hidden, 3 * hidden), nn.Linear(hidden, hidden)
        self.ffn = nn.Sequential(nn.Linear(hidden, hidden), nn.GELU(), nn.Dropout(dropout), nn.Linear(hidden, hidden))
        self.drop = nn.Dropout(dropout)

    def forward(self, x: torch.Tensor, allowed: torch.Tensor) -> torch.Tensor:
        b, n, d = x.shape
        q, k, v = self.qkv(self.norm1(x)).view(b, n, 3, self.heads, d // self.heads).permute(2, 0, 3, 1, 4)
        a = F.scaled_dot_product_attention(q, k, v, attn_mask=allowed[:, None],
                                           dropout_p=self.dropout if self.training else 0.0)
        x = x + self.drop(self.out(a.transpose(1, 2).reshape(b, n, d)))
        return x + self.drop(self.ffn(self.norm2(x)))


class SASRecNet(nn.Module):
    def __init__(self, n_items: int, max_len: int, hidden: int, blocks: int, heads: int, dropout: float):
        super().__init__()
        self.items = nn.Embedding(n_items + 1, hidden, padding_idx=PAD)
        self.positions = nn.Embedding(max_len, hidden)
        self.drop = nn.Dropout(dropout)
        self.blocks = nn.ModuleList(CausalBlock(hidden, heads, dropout) for _ in range(blocks))
        self.norm = nn.LayerNorm(hidden)
        nn.init.normal_(self.items.weight, std=hidden ** -0.5)
        with torch.no_grad():
            self.items.weight[PAD].zero_()

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        """(batch, len) left-padded tokens -> (batch, len, hidden) states; state t has seen tokens ≤ t."""
        n = tokens.shape[1]
        valid = tokens != PAD
        causal = torch.tril(torch.ones(n, n, dtype=torch.bool, device=tokens.device))
        # padded queries attend to themselves only (never an empty row); real ones never see padding
        allowed = causal[None] & (valid[:, None, :] | torch.eye(n, dtype=torch.bool, device=tokens.device)[None])
        x = self.items(tokens) * math.sqrt(self.items.embedding_dim) + self.positions.weight[None, :n]
        x = self.drop(x) * valid[..., None]
        for block in self.blocks:
            x = block(x, allowed) * valid[..., None]
        return self.norm(x)

    def logits(self, states: torch.Tensor) -> torch.Tensor:
        """Scores of every catalog item (tied input/output embeddings), padding token dropped."""
        return states @ self.items.weight[1:].T


def training_windows(sequences: Sequence[Sequence[int]], max_len: int) -> tuple[np.ndarray, np.ndarray]:
    """Inputs / next-item targets covering every prefix: long sequences are cut into consecutive windows."""
    inputs, targets = [], []
    for seq in sequences:
        tokens = np.asarray(seq, dtype=np.int64) + 1
        end = len(tokens)
        while end >= 2:
            chunk = tokens[max(0, end - max_len - 1):end]
            x, y = np.zeros(max_len, np.int64), np.full(max_len, -100, np.int64)
            x[max_len - len(chunk) + 1:], y[max_len - len(chunk) + 1:] = chunk[:-1], chunk[1:] - 1
            inputs.append(x)
            targets.append(y)
            end -= max_len
    if not inputs:
        raise ValueError("SASRec needs at least one user with two or more train interactions")
    return np.stack(inputs), np.stack(targets)


def left_pad(histories: Sequence[Sequence[int]], max_len: int) -> torch.Tensor:
    out = np.zeros((len(histories), max_len), dtype=np.int64)
    for row, history in enumerate(histories):
        tail = np.asarray(history[-max_len:], dtype=np.int64) + 1
        if len(tail):
            out[row, max_len - len(tail):] = tail
    return torch.from_numpy(out)


def ndcg_at_10(scores: np.ndarray, histories: Sequence[Sequence[int]], targets: Sequence[int]) -> float:
    """Mean full-ranking NDCG@10, history (minus the target) excluded, ties by index
    (`retrieval.ranking`, docs/ARCHITECTURE.md §6)."""
    excluded = exclusion_mask(histories, scores.shape[1], targets)
    return float(ndcg_at(target_ranks(scores, targets, excluded), 10).mean())


@register("sasrec")
class SASRec(Recommender):
    sequential = True
    # The defaults are the tuned ones (eval and serving both build SASRec from them). Tuned on the validation
    # split (best val NDCG@10): max_len 50 / dropout .2 → .1136 (65 epochs); max_len 200 / dropout .2 → .1141
    # but 3× slower per epoch (96 epochs); max_len 50 / dropout .5 → .0974.
    def __init__(self, max_len: int = 50, hidden: int = 64, blocks: int = 2, heads: int = 1, dropout: float = 0.2,
                 lr: float = 1e-3, weight_decay: float = 0.0, batch_size: int = 128, max_epochs: int = 200,
                 patience: int = 10, seed: int = 0, threads: int | None = 1, home: str | Path | None = None,
                 verbose: bool = False):
        """`threads`: torch intra-op threads while fitting (None = torch's default). One thread is the robust
        choice on a shared CPU: with more threads than free cores, torch's thread barriers slow training
        down by up to 10× (measured on this project's 2-core machine under load)."""
        if hidden % heads:
            raise ValueError(f"hidden ({hidden}) must be divisible by heads ({heads})")
        if max_len < 2 or hidden < 1 or blocks < 1 or not 0.0 <= dropout < 1.0:
            raise ValueError("SASRec needs max_len >= 2, hidden >= 1, blocks >= 1 and 0 <= dropout < 1")
        self.config = dict(max_len=int(max_len), hidden=int(hidden), blocks=int(blocks), heads=int(heads),
                           dropout=float(dropout), lr=float(lr), weight_decay=float(weight_decay),
                           batch_size=int(batch_size), max_epochs=int(max_epochs), patience=int(patience),
                           seed=int(seed))
        self.threads = threads
        self.home = Path(home) if home else None
        self.verbose = verbose
        self.curve: list[dict] = []
        self.loaded_from_cache = False

    def get_params(self) -> dict:
        return {**self.config, "threads": self.threads}

    # -- fitting -----------------------------------------------------------------------------------
    def fit(self, train: Interactions, catalog: Catalog,
            validation: Sequence[tuple[Sequence[int], int]] | None = None,
            progress: Callable[[dict], None] | None = None) -> "SASRec":
        """Train on each user's chronological train items. `validation` = (history, target) pairs for early
        stopping; when omitted, each user's last train item is held out for it (and not trained on)."""
        super().fit(train, catalog)
        sequences = [train.items[rows].tolist() for rows in train.chronological()]
        if validation is None:
            validation = [(s[:-1], s[-1]) for s in sequences if len(s) >= 3]
            sequences = [s[:-1] if len(s) >= 3 else s for s in sequences]
        if not validation:
            raise ValueError("SASRec early stopping needs at least one validation (history, target) pair")
        key = self._cache_key(sequences, validation)
        cache = self.home / "models" / key if self.home is not None else None
        self.net = self._new_net()
        loaded = next((path for path in (cache, PRETRAINED / key) if path is not None and self._load_cache(path)), None)
        if loaded is not None:
            cache = loaded
        else:
            previous = torch.get_num_threads()
            if self.threads:
                torch.set_num_threads(self.threads)
            try:
                self._train(sequences, validation, progress)
            finally:
                torch.set_num_threads(previous)
            if cache is not None:
                self._save_cache(cache)
        self.cache_path = cache
        self.net.eval()
        return self

    def _new_net(self) -> SASRecNet:
        torch.manual_seed(self.config["seed"])
        c = self.config
        return SASRecNet(self.n_items, c["max_len"], c["hidden"], c["blocks"], c["heads"], c["dropout"])

    def _cache_key(self, sequences, validation) -> str:
        """The weights' file name: a hash of the hyper-parameters and the exact training and validation data."""
        h = hashlib.sha256(json.dumps({"config": self.config, "n_items": self.n_items, "version": 1},
                                      sort_keys=True).encode())
        for seq in sequences:
            h.update(np.asarray(seq, dtype=np.int32).tobytes() + b"|")
        for history, target in validation:
            h.update(np.asarray([*history, -1, target], dtype=np.int32).tobytes())
        return f"sasrec-{h.hexdigest()[:16]}.safetensors"

    @staticmethod
    def _sidecar(cache: Path) -> Path:
        return cache.with_suffix(".json")

    def _load_cache(self, cache: Path) -> bool:
        """Weights + sidecar into this model; False (logged) when absent, old or unreadable: the caller retrains."""
        from safetensors import SafetensorError
        from safetensors.torch import load_file

        if not cache.is_file() or not self._sidecar(cache).is_file():
            if cache.with_suffix(".pt").is_file():
                log.info("ignoring the old pickled SASRec cache %s; retraining into %s", cache.with_suffix(".pt"),
                         cache.name)
            return False
        try:
            meta = json.loads(self._sidecar(cache).read_text(encoding="utf-8"))
            if meta.get("format") != CACHE_FORMAT or meta.get("config") != self.config:
                raise ValueError(f"sidecar is for format {meta.get('format')!r} / another config")
            if "sha256" in meta and sha256(cache) != meta["sha256"]:  # garbled bytes still parse as weights
                raise ValueError("the weights changed since they were written (sha256 differs)")
            self.net.load_state_dict(load_file(str(cache)), strict=True)
            curve, best_epoch = list(meta["curve"]), int(meta["best_epoch"])
        except (OSError, ValueError, KeyError, TypeError, AttributeError, RuntimeError, SafetensorError) as exc:
            # truncated / foreign files, another format or shapes: retrained, never a crash
            log.warning("ignoring the unreadable SASRec cache %s (%s: %s); retraining", cache.name,
                        type(exc).__name__, exc)
            self.net = self._new_net()  # a partial load_state_dict must not leak into training
            return False
        self.curve, self.best_epoch, self.loaded_from_cache = curve, best_epoch, True
        return True

    def _save_cache(self, cache: Path) -> None:
        """Weights first, sidecar last, each atomically: a crash leaves no sidecar, hence no loadable cache."""
        from safetensors.torch import save_file

        cache.parent.mkdir(parents=True, exist_ok=True)
        tmp = cache.with_name(cache.name + ".tmp")
        save_file({k: v.contiguous() for k, v in self.net.state_dict().items()}, str(tmp))
        tmp.replace(cache)
        sidecar = self._sidecar(cache)
        tmp = sidecar.with_name(sidecar.name + ".tmp")
        tmp.write_text(json.dumps({"format": CACHE_FORMAT, "config": self.config, "curve": self.curve,
                                   "best_epoch": self.best_epoch, "sha256": sha256(cache)}, indent=1) + "\n",
                       encoding="utf-8")
        tmp.replace(sidecar)

    def _train(self, sequences, validation, progress) -> None:
        c = self.config
        rng = np.random.default_rng(c["seed"])
        inputs, targets = training_windows(sequences, c["max_len"])
        inputs, targets = torch.from_numpy(inputs), torch.from_numpy(targets)
        optimiser = torch.optim.Adam(self.net.parameters(), lr=c["lr"], weight_decay=c["weight_decay"])
        val_histories, val_targets = [h for h, _ in validation], [t for _, t in validation]
        best, best_state, waited, self.best_epoch = -1.0, None, 0, 0
        for epoch in range(1, c["max_epochs"] + 1):
            self.net.train()
            started, total, count = time.perf_counter(), 0.0, 0
            for batch in np.array_split(rng.permutation(len(inputs)), max(1, math.ceil(len(inputs) / c["batch_size"]))):
                x, y = inputs[batch], targets[batch]
                keep = y != -100
                states = self.net(x)[keep]  # only real positions pay for the full softmax
                loss = F.cross_entropy(self.net.logits(states), y[keep])
                optimiser.zero_grad(set_to_none=True)
                loss.backward()
                optimiser.step()
                total, count = total + float(loss.detach()) * int(keep.sum()), count + int(keep.sum())
            self.net.eval()
            ndcg = ndcg_at_10(self._scores(val_histories), val_histories, val_targets)
            point = {"epoch": epoch, "loss": total / count, "val_ndcg@10": ndcg,
                     "seconds": round(time.perf_counter() - started, 2)}
            self.curve.append(point)
            if progress is not None:
                progress(point)
            if self.verbose:
                print(point, flush=True)
            if ndcg > best:
                best, waited, self.best_epoch = ndcg, 0, epoch
                best_state = {k: v.detach().clone() for k, v in self.net.state_dict().items()}
            else:
                waited += 1
                if waited >= c["patience"]:
                    break
        self.net.load_state_dict(best_state)

    # -- scoring -----------------------------------------------------------------------------------
    @torch.no_grad()
    def _scores(self, histories: Sequence[Sequence[int]], batch: int = 256) -> np.ndarray:
        out = []
        for start in range(0, len(histories), batch):
            tokens = left_pad(histories[start:start + batch], self.config["max_len"])
            out.append(self.net.logits(self.net(tokens)[:, -1]).numpy())
        return np.concatenate(out) if out else np.zeros((0, self.n_items), np.float32)

    def score(self, users: Sequence[UserContext], candidates: np.ndarray | None = None) -> np.ndarray:
        self.net.eval()
        scores = self._scores([list(u.history) for u in users])
        empty = [row for row, u in enumerate(users) if not u.history]
        scores[empty] = 0.0  # no history: no sequential signal (ties fall back to catalog order)
        return take_candidates(scores, candidates)
