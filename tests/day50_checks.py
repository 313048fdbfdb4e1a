"""Shared by the plain and the accelerated tests: a whole training step held to the Day 50 lesson's."""
import torch

from cbam_course import day50


def assert_training_step_matches_day50(ours: torch.nn.Module) -> None:
    """``ours`` (an AttentionCNN at width 64, plain or accelerated, with the weights of a Day 50
    ``CBAM_CNN`` built after ``torch.manual_seed(0)``) gives the Day 50 lesson's gradients in a training step
    (train mode, dropout, BatchNorm, ReLU zeros)."""
    torch.manual_seed(0)
    theirs = day50.CBAM_CNN()
    ours.load_state_dict(theirs.state_dict())
    x, y = torch.randn(4, 3, 32, 32), torch.tensor([0, 3, 5, 9])
    grads = []
    for model in (ours, theirs):
        torch.manual_seed(1)  # same dropout mask
        torch.nn.functional.cross_entropy(model(x), y).backward()
        grads.append([p.grad for p in model.parameters()])
    assert len(grads[0]) == len(grads[1])
    for a, b in zip(*grads):
        torch.testing.assert_close(a, b, atol=1e-5, rtol=1e-3)
