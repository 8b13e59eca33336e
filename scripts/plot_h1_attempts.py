"""Draw docs/results/h1_attempts.png from the measured figures in docs/results/h1_attempts.json."""
import json
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
from ae_hubert.analysis.study_plots import plot_attempts  # noqa: E402

here = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "docs", "results")
with open(os.path.join(here, "h1_attempts.json")) as f:
    attempts = json.load(f)["attempts"]
print(plot_attempts(attempts, os.path.join(here, "h1_attempts.png")))
