import sys
from pathlib import Path

import pytest
import torch

# shared helpers that tests import as plain modules (learner_impls.py) live in this folder
sys.path.insert(0, str(Path(__file__).parent))


def pytest_configure(config):
    # tests/fast/conftest.py makes a test with this marker fail, not skip, where numba is missing;
    # `make unit` leaves them out with -m "not numba", the fast-layer CI step runs them.
    config.addinivalue_line("markers", "numba: needs the optional numba extra (pip install -e .[fast])")


@pytest.fixture
def one_thread():
    """One torch thread for the test: the data and training tests are small, and a shared
    2-core machine punishes oversubscription. Modules opt in with
    ``pytestmark = pytest.mark.usefixtures("one_thread")``."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)
