"""cbam_course: the helper package behind the CBAM course.

The teaching core, in reading order (one evening's read):

1. ``attention``: ChannelAttention, SpatialAttention, CBAM, SEBlock, record_attention: the paper's
   formulas, each in its module's ``forward``;
2. ``models``: AttentionCNN, the Day 50 lesson's CNN with a choice of attention;
3. ``variants``: CBAM's other arrangements, and the official code's and timm's layouts;
4. ``measure``: parameters, FLOPs, and time side by side (one interleaved timer);
5. ``images``: a real photograph and a readable stack of feature maps made from it;
6. ``plots``: the figures of lessons 01-04;
7. ``runtime``: the device, the quick switch, seeding;
8. ``seed``: the Day 50 lesson's own code, the reference the tests hold the core against;
9. ``checks``: the exercise checkers (``from cbam_course.checks import check_cbam``).

Subpackages that the core never imports:

- ``cbam_course.train``: data, loops, recipes, checkpoints, the Trainer (lessons 05-06);
- ``cbam_course.fast``: ``accelerate(model)``, the same maths made fast for CPU training, and
  the benchmarks. ``train_model`` and the command line use it; you need not;
- ``cbam_course.grading``: running notebooks within limits, and ``python -m cbam_course grade``
  for instructors.
"""
from .attention import CBAM, ChannelAttention, SEBlock, SpatialAttention, record_attention
from .images import FEATURE_NAMES, feature_stack, load_photo
from .measure import compare_time, count_flops, count_parameters, time_forward
from .models import ATTENTIONS, AttentionCNN
from .runtime import get_device, quick_mode, seed_everything
from .variants import OfficialCBAM, ParallelCBAM, SpatialFirstCBAM, TimmCBAM, copy_seed_weights

__version__ = "0.1.0"

__all__ = [
    "ChannelAttention", "SpatialAttention", "CBAM", "SEBlock", "record_attention",
    "AttentionCNN", "ATTENTIONS",
    "SpatialFirstCBAM", "ParallelCBAM", "OfficialCBAM", "TimmCBAM", "copy_seed_weights",
    "count_parameters", "count_flops", "time_forward", "compare_time",
    "load_photo", "feature_stack", "FEATURE_NAMES",
    "get_device", "quick_mode", "seed_everything",
]
