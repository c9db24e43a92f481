"""Candidate preferences from a user's observations: clustering, contradiction, stability."""

from consolidation.preferences.clusters import ClusterConfig, Position, Preference, cluster_preferences
from consolidation.preferences.stability import StabilityConfig, Verdict, assess

__all__ = [
    "ClusterConfig",
    "Position",
    "Preference",
    "StabilityConfig",
    "Verdict",
    "assess",
    "cluster_preferences",
]
