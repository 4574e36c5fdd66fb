import os
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(Path(__file__).resolve().parent))
# Tests never reach a model hub: an accidental download fails fast instead of hanging.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
# Plotly checks every property of the figures the app builds from plain dicts (plots.common.dict_figure).
os.environ["EXPLORER_VALIDATE_FIGURES"] = "1"
