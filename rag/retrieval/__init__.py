"""Retrieval: dense + keyword search over the store, fused into one hit per paper."""
