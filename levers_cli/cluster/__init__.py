"""Cluster: distinct query embeddings → route categories with readable labels."""

from levers_cli.cluster.algorithms import Clustering, ClusterParams, cluster_embeddings
from levers_cli.cluster.categorize import CategorizeResult, categorize

__all__ = ["CategorizeResult", "ClusterParams", "Clustering", "categorize", "cluster_embeddings"]
