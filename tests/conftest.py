import sys
from pathlib import Path

import pytest
import torch

# tests import the seed's reference classes from this folder
sys.path.insert(0, str(Path(__file__).parent))


@pytest.fixture
def one_thread():
    """One torch thread for the test: the data and training tests are small, and a shared
    2-core machine punishes oversubscription. Modules opt in with
    ``pytestmark = pytest.mark.usefixtures("one_thread")``."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)
