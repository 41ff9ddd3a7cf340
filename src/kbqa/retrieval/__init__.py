"""Embedders, the vector index and the retriever."""
