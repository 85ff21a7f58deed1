"""lapor-nlp: read Indonesian public-service complaints and decide what each is about and who must
handle it.

The names a user needs::

    import lapor_nlp
    from lapor_nlp import Router, Complaint, Prediction, Preprocessor

    router = lapor_nlp.load()               # the bundled default model (built on first use)
    router = lapor_nlp.load("models/mine")  # a model directory made by `lapor-nlp train`
    p = router("Lampu PJU di Jl. Kenanga mati sudah seminggu, Kota Malang")
    p.agency.label, p.routed_to, p.needs_review
    for p in router.pipe(texts, batch_size=4096): ...

Everything else (``lapor_nlp.text``, ``lapor_nlp.training``, ``lapor_nlp.errors``) is importable
but not re-exported here.
"""

from ._version import __version__
from .router import Router
from .schemas import Complaint, Prediction
from .text import Preprocessor

__all__ = ["Complaint", "Prediction", "Preprocessor", "Router", "__version__", "load"]


def load(path=None, *, quiet: bool = False, **options) -> Router:
    """A Router for the model directory ``path``; with no path, the bundled default model, built
    from the project's corpus on first use (about 25-60 s, once per version; a message on stderr says
    so unless ``quiet``). ``options`` are :class:`Router`'s (``home_region``, ``scope``, ...)."""
    if path is None:
        from .training.default import ensure_default_model  # building is the training side's job

        path = ensure_default_model(quiet=quiet)
    return Router.load(path, **options)
