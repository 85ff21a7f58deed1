"""Retraining: :func:`train` (file -> model directory with a report), :func:`evaluate` and
:func:`compare` (should a new model replace the deployed one?)."""

from .compare import Comparison, compare
from .data import Columns, DataReport, Example, Problem, load_labelled, split_examples
from .evaluate import evaluate
from .train import TrainResult, train

__all__ = ["Columns", "Comparison", "DataReport", "Example", "Problem", "TrainResult", "compare",
           "evaluate", "load_labelled", "split_examples", "train"]
