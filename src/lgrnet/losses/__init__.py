"""Training losses: Hungarian matching, point-sampled mask losses, class cross-entropy."""
from .criterion import ClipTarget, SetCriterion, dice_per_mask, sigmoid_bce_per_mask
from .matching import assign, clip_matching_cost, pairwise_dice, pairwise_sigmoid_bce
from .point_sampling import logit_uncertainty, point_sample, uncertain_point_coords_with_randomness

__all__ = ["ClipTarget", "SetCriterion", "assign", "clip_matching_cost", "dice_per_mask", "logit_uncertainty",
           "pairwise_dice", "pairwise_sigmoid_bce", "point_sample", "sigmoid_bce_per_mask",
           "uncertain_point_coords_with_randomness"]
