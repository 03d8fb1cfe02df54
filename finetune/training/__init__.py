"""LoRA fine-tuning of the listwise reranker: config (`[finetune]`), trainer (peft + accelerate), validation through
the serving reranker, model card and training curve, and the `marquee finetune` command."""
