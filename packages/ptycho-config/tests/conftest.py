import sys
from pathlib import Path

# tests/ is not a package (pytest --import-mode=importlib); make config_strategies.py importable.
sys.path.insert(0, str(Path(__file__).parent))
