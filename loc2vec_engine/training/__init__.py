"""Training: triplets from spatially disjoint blocks, augmentation, losses, the no-learning baseline.

torch is imported by the modules that need it, when they need it.
"""

from .augment import Augment
from .baselines import FractionsBaseline, channel_fractions, triplet_accuracy_of_embeddings
from .blocks import SPLITS, BlockSplit, auto_block_m, guard_margin_m, split_blocks
from .losses import triplet_accuracy, triplet_loss
from .triplets import Triplets, TripletSampler

__all__ = ["Augment", "BlockSplit", "FractionsBaseline", "SPLITS", "TripletSampler", "Triplets", "auto_block_m",
           "channel_fractions", "guard_margin_m", "split_blocks", "triplet_accuracy",
           "triplet_accuracy_of_embeddings", "triplet_loss"]
