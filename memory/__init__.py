"""What imprint remembers: observations, extraction, recall (and, later, weight deltas and the ledger).

This package imports nothing else of the project; heavy objects (embedder, chroma client) are built by
the caller and handed in.
"""
