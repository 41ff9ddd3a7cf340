"""Evaluation: public benchmarks and held-out sets (retrieval and answers), in BEIR layout."""
