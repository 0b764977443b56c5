"""Evaluation metrics: the SUN-SEG toolbox protocol (:mod:`.sunseg`) and the LGRNet authors' own
Dice / IoU (:mod:`.authors`); :mod:`.scoring` pairs prediction folders with ground truth and reports.

The two protocols are not comparable: the SUN-SEG toolbox (used by PNS+, SALI and most peers' tables)
scores probability maps over 256 thresholds with each video's first and last frame dropped and
videos weighted equally; the authors' evaluator scores binary masks on every frame, pooled.
"""
from .scoring import PROTOCOLS, ScoreResult, VideoPairs, pair_folders, pairs_from_records, score

__all__ = ["PROTOCOLS", "ScoreResult", "VideoPairs", "pair_folders", "pairs_from_records", "score"]
