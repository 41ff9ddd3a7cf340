"""Prompting, generation, support checking and the answerer."""
