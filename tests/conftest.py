import sys
from pathlib import Path

# tests import the seed's reference classes from this folder
sys.path.insert(0, str(Path(__file__).parent))
