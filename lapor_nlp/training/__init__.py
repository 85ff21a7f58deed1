"""Retraining: :func:`train` (file -> model directory with a report) and :func:`evaluate`."""

from .data import Columns, DataReport, Example, Problem, load_labelled, split_examples
from .evaluate import evaluate
from .train import TrainResult, train

__all__ = ["Columns", "DataReport", "Example", "Problem", "TrainResult", "evaluate",
           "load_labelled", "split_examples", "train"]
