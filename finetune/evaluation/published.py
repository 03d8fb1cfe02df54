"""Published LLM-reranker figures: LOOSE CONTEXT ONLY, never a same-protocol comparison (docs/ARCHITECTURE.md §6).

Each row is copied from the authors' own results table (paper / repository README), with where it comes
from and why it is not comparable. Only figures we could read in the source are listed.
"""
from __future__ import annotations

PUBLISHED = [
    {
        "system": "LlamaRec (Llama-2-7B ranker over LRURec top-20)",
        "data": "'ML-100k' of the paper = ml-latest-small (610 users, 9.7k movies; their datasets/ml_100k.py "
                "downloads ml-latest-small.zip), leave-one-out, full ranking",
        "figures": {"ndcg@5": 0.0543, "recall@5": 0.0852, "mrr@10": 0.0529, "ndcg@10": 0.0759, "recall@10": 0.1524},
        "their_baselines": {"LRURec ndcg@10": 0.0705, "SASRec ndcg@10": 0.0522},
        "source": "Yue et al. 2023, arXiv:2311.02089, Table 1 (also github.com/Yueeeeeeee/LlamaRec media/performance.png)",
    },
    {
        "system": "LLaRA (Llama-2-7B, hybrid prompts, SASRec embeddings)",
        "data": "the authors' MovieLens file and split; the model picks one title from a short candidate list",
        "figures": {"hit_ratio@1": 0.4526, "valid_ratio": 0.9789},
        "their_baselines": {},
        "source": "Liao et al., SIGIR 2024, arXiv:2312.02445; updated results in github.com/ljy0ustc/LLaRA README (2024.7)",
    },
    {
        "system": "TALLRec (LLaMA-7B LoRA, yes/no like prediction)",
        "data": "the authors' movie file (MovieLens-derived, data/movie in their repo), few-shot training; AUC of "
                "binary like/dislike prediction, not a top-k metric",
        "figures": {"auc_16_shot": 0.6724, "auc_64_shot": 0.6748, "auc_256_shot": 0.7198},
        "their_baselines": {"SASRec auc_256_shot": 0.5225},
        "source": "Bao et al., RecSys 2023, arXiv:2305.00447, Table 1 (also github.com/SAI990323/TALLRec README)",
    },
]

CAVEAT = ("Other MovieLens files, splits, candidate sets and metrics: these numbers are NOT comparable with the "
          "table above; the bar is always the baselines of the same run.")
