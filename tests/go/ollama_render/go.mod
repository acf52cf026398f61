module llmops-ft/tests/ollama_render

go 1.19
