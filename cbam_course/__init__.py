"""cbam_course: the helper package behind the CBAM course.

The teaching core, in reading order (one evening's read):

1. ``attention``: ChannelAttention, SpatialAttention, CBAM, SEBlock, record_attention: the paper's
   formulas, each module's ``logits`` before its sigmoid and ``forward`` ending in the gate;
2. ``day50``: the Day 50 lesson's own code, copied as it is: read it beside ``attention``, which
   the tests hold to it;
3. ``models``: AttentionCNN, the Day 50 lesson's CNN with a choice of attention;
4. ``variants``: CBAM's other arrangements, and the official code's and timm's layouts;
5. ``measure``: parameters, FLOPs, and time side by side (one interleaved timer);
6. ``images`` and ``plots``: a real photograph, a readable stack of feature maps, the figures of
   lessons 01-04;
7. ``runtime``: the device, the quick switch, seeding, the course's environment variables.

Beside the reading: ``checks``, the exercise checkers (``from cbam_course.checks import
check_cbam``). Subpackages, each above the ones before it:

- ``cbam_course.fast``: ``accelerate(model)``, the same maths made fast for CPU training;
- ``cbam_course.train``: data, loops, recipes, checkpoints, the Trainer (lessons 05-06);
- ``cbam_course.bench`` and ``cbam_course.grading``: the benchmarks behind the speed claims, and
  running notebooks within limits (``python -m cbam_course grade`` for instructors).

The core imports none of them.
"""
from .attention import CBAM, ChannelAttention, SEBlock, SpatialAttention, record_attention
from .images import FEATURE_NAMES, feature_stack, load_photo
from .measure import compare_time, count_flops, count_parameters, time_forward
from .models import ATTENTIONS, AttentionCNN
from .runtime import get_device, quick_mode, seed_everything
from .variants import OfficialCBAM, ParallelCBAM, SpatialFirstCBAM, TimmCBAM, copy_cbam_weights

__version__ = "0.1.0"

__all__ = [
    "ChannelAttention", "SpatialAttention", "CBAM", "SEBlock", "record_attention",
    "AttentionCNN", "ATTENTIONS",
    "SpatialFirstCBAM", "ParallelCBAM", "OfficialCBAM", "TimmCBAM", "copy_cbam_weights",
    "count_parameters", "count_flops", "time_forward", "compare_time",
    "load_photo", "feature_stack", "FEATURE_NAMES",
    "get_device", "quick_mode", "seed_everything",
]
