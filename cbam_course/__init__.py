"""cbam_course: the helper package behind the CBAM course.

Everything a lesson reuses lives here, one module per concern:

- ``attention``: ChannelAttention, SpatialAttention, CBAM, SEBlock, record_attention
- ``kernels``: CBAM's CPU training step as loops compiled by numba (contiguous float32/float64)
- ``fused``: CBAM's hand-written PyTorch forward and backward for the other CPU cases
- ``models``: AttentionCNN, the seed's CNN with a choice of attention
- ``measure``: parameters, FLOPs, and time side by side
- ``runtime``: the device, the quick switch, seeding, keeping freed memory on the CPU
- ``images``: a real photograph and a readable stack of feature maps made from it
- ``checks``: the exercise checkers (check_channel_attention, check_cbam, ... check_evaluate)
- ``exercises``: generates exercises/ from solutions/ (``make exercises``; needs nbformat, not imported here)
- ``variants``: CBAM's other arrangements and other codebases' layouts (official code, timm)
- ``plots``: figures the lessons share (feature maps, channel weights, attention overlays, diagrams)
- ``data``: CIFAR-10 in memory, the generated stand-in, batched augmentation, BatchLoader
- ``training``: train_step, evaluate, History, Trainer, checkpoints, train_model
- ``recipes``: the seed's and the fast recipe, the quick/laptop/full profiles
"""
from .attention import CBAM, ChannelAttention, SEBlock, SpatialAttention, record_attention
from .measure import compare_time, count_flops, count_parameters, time_forward
from .models import ATTENTIONS, AttentionCNN
from .runtime import get_device, keep_freed_memory, quick_mode, seed_everything
from .images import FEATURE_NAMES, feature_stack, load_photo
from .variants import OfficialCBAM, ParallelCBAM, SpatialFirstCBAM, TimmCBAM, copy_seed_weights
from .data import BatchLoader, DataError, ImageSet, augment_batch, load_cifar10, make_standin, normalize
from .recipes import PROFILES, RECIPES, Profile, Recipe, get_profile, get_recipe
from .training import (CheckpointError, History, Trainer, evaluate, fit, load_checkpoint, train_model,
                       train_step)
from .checks import (check_cbam, check_channel_attention, check_channel_attention_params,
                     check_channel_descriptors, check_evaluate, check_se_block, check_spatial_attention,
                     check_spatial_descriptors, check_spatial_first_cbam, check_train_step)
from .plots import overlay_attention, plot_channel_weights, plot_data_flow, show_feature_stack, show_image

__version__ = "0.1.0"

__all__ = [
    "ChannelAttention", "SpatialAttention", "CBAM", "SEBlock", "record_attention",
    "AttentionCNN", "ATTENTIONS",
    "count_parameters", "count_flops", "time_forward", "compare_time",
    "get_device", "quick_mode", "seed_everything", "keep_freed_memory",
    "load_photo", "feature_stack", "FEATURE_NAMES",
    "SpatialFirstCBAM", "ParallelCBAM", "OfficialCBAM", "TimmCBAM", "copy_seed_weights",
    "load_cifar10", "make_standin", "ImageSet", "BatchLoader", "augment_batch", "normalize", "DataError",
    "Recipe", "RECIPES", "get_recipe", "Profile", "PROFILES", "get_profile",
    "train_step", "evaluate", "History", "Trainer", "fit", "train_model", "load_checkpoint", "CheckpointError",
    "check_channel_attention", "check_spatial_attention", "check_cbam", "check_se_block",
    "check_spatial_first_cbam", "check_channel_attention_params", "check_channel_descriptors",
    "check_spatial_descriptors", "check_train_step", "check_evaluate",
    "show_image", "show_feature_stack", "plot_channel_weights", "overlay_attention", "plot_data_flow",
]
