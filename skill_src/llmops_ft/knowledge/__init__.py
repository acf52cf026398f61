"""The knowledge every stage reads: recommendations, the docs facts they cite, and the packaged data files."""
