"""Evaluation metrics as pure formulas: the SUN-SEG toolbox protocol (:mod:`.sunseg`), the LGRNet
authors' own Dice / IoU (:mod:`.authors`), their UFUV evaluator (:mod:`.fibroid`) and the
reliability of a per-frame score (:mod:`.reliability`). Pairing prediction folders with ground
truth and writing reports is :mod:`lgrnet.evaluation.scoring`.

The protocols are not comparable: the SUN-SEG toolbox (used by PNS+, SALI and most peers' tables)
scores probability maps over 256 thresholds with each video's first and last frame dropped and
videos weighted equally; the authors' evaluators score binary masks on every frame, pooled (the
polyp one with +1 smoothing, the fibroid one without, plus pooled IoU, recall, precision and F).
"""
