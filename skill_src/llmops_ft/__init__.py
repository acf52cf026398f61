"""llmops-fine-tuner: dataset to fine-tuned model in Ollama, with advice grounded in the Unsloth docs."""

__version__ = "0.1.0"
