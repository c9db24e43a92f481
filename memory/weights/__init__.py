"""Per-user weight memory: low-rank deltas on top of a shared base model, versioned in a ledger."""
