"""Model engines: run folders, Hugging Face and llama.cpp models, chat templates, generation and logits."""
