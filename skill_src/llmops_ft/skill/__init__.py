"""The skill: recommendations, rendering and the validation harness."""
