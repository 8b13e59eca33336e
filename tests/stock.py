"""Import fairseq's own HuBERT sidecar scripts (shipped in the fairseq package) for format tests."""
import importlib
import os
import sys

import fairseq

SIMPLE_KMEANS = os.path.join(os.path.dirname(fairseq.__file__), "examples", "hubert", "simple_kmeans")
HUBERT_EXAMPLES = os.path.dirname(SIMPLE_KMEANS)


def stock_module(name: str):
    for d in (SIMPLE_KMEANS, HUBERT_EXAMPLES):
        if d not in sys.path:
            sys.path.insert(0, d)
    return importlib.import_module(name)
