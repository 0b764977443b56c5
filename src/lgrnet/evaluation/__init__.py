"""Evaluation: a dataset split -> predictions -> scores -> reports (:mod:`.evaluate`), and scoring
prediction folders against ground truth with the protocols of :mod:`lgrnet.metrics`
(:mod:`.scoring`: pairing, the protocol drivers, report writing)."""
from .scoring import PROTOCOLS, ScoreResult, VideoPairs, pair_folders, pairs_from_records, score

__all__ = ["PROTOCOLS", "ScoreResult", "VideoPairs", "pair_folders", "pairs_from_records", "score"]
