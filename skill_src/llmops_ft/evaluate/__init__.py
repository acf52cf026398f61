"""Generate from any export kind and compare models: generate (one interface over adapter / merged / GGUF),
hf_engine and llama_engine (the two runtimes), rows (conversations from dataset rows), metrics (Task API scores,
loss/perplexity), command (evaluate.py) and chat_command (chat.py).
"""
