"""Export a training run: adapter, merged 16-bit, GGUF (+ Ollama Modelfile), each verified (see pipeline.py).

Modules: adapter (run dir, adapter copy), merge (16-bit merge on a float base), gguf_convert + gguf_vocab (our
HF -> GGUF converter), quantize (llama.cpp K-quants), templates (chat-template families and rendering),
modelfile (Ollama), verify (checks and report), pipeline (the whole export), command (the CLI).
Heavy libraries are imported inside functions, so importing this package is cheap.
"""
