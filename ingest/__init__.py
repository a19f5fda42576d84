"""Ingest: read abstract files, chunk, embed and store them in Chroma."""
