"""lapor-nlp: read Indonesian public-service complaints and decide what each is about and who must
handle it.

The names a user needs::

    from lapor_nlp import Router, Complaint, Prediction, Preprocessor

    router = Router.load()                  # the bundled default model
    p = router.predict("Lampu PJU di Jl. Kenanga mati sudah seminggu, Kota Malang")
    p.agency.label, p.routed_to, p.needs_review

Everything else (``lapor_nlp.text``, ``lapor_nlp.training``, ``lapor_nlp.errors``) is importable
but not re-exported here.
"""

from ._version import __version__
from .router import Router
from .schemas import Complaint, Prediction
from .text import Preprocessor

__all__ = ["Complaint", "Prediction", "Preprocessor", "Router", "__version__"]
