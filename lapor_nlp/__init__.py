"""lapor-nlp: read Indonesian public-service complaints and decide what each is about and who must
handle it.

The names a user needs::

    from lapor_nlp import Router, Complaint, Prediction, Preprocessor
"""

from ._version import __version__
from .text import Preprocessor

__all__ = ["Preprocessor", "__version__"]
