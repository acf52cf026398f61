"""The Unsloth docs as facts: page list, GitBook markdown normaliser, extractor, cache sync and drift report."""
