"""Evaluation metrics: the SUN-SEG toolbox protocol (:mod:`.sunseg`), the LGRNet authors' own
Dice / IoU (:mod:`.authors`) and their UFUV evaluator (:mod:`.fibroid`); :mod:`.scoring` pairs
prediction folders with ground truth and reports.

The protocols are not comparable: the SUN-SEG toolbox (used by PNS+, SALI and most peers' tables)
scores probability maps over 256 thresholds with each video's first and last frame dropped and
videos weighted equally; the authors' evaluators score binary masks on every frame, pooled (the
polyp one with +1 smoothing, the fibroid one without, plus pooled IoU, recall, precision and F).
"""
from .scoring import PROTOCOLS, ScoreResult, VideoPairs, pair_folders, pairs_from_records, score

__all__ = ["PROTOCOLS", "ScoreResult", "VideoPairs", "pair_folders", "pairs_from_records", "score"]
