"""The Task API running example: its jsonschema, a seeded conversation generator, and the scoring evaluate uses."""
