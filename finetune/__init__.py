"""Fine-tuning and evaluation: leave-one-out splits, the evaluation harness and its baselines, LoRA training."""
