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

from typing import TYPE_CHECKING

from . import errors  # noqa: F401 - ``except lapor_nlp.errors.LaporError`` after ``import lapor_nlp``
from ._version import __version__

if TYPE_CHECKING:
    from .router import Router
    from .schemas import Complaint, Prediction
    from .text import Preprocessor

__all__ = ["Complaint", "Prediction", "Preprocessor", "Router", "__version__", "load"]

# Imported on first use (PEP 562): the router's stack (numpy, scipy, pydantic) takes ~0.4 s to
# import, which a process that only cuts and dispatches a backlog (``classify --jobs N``'s
# parent, the command line's --help) does not need.
_LAZY = {"Router": ".router", "Complaint": ".schemas", "Prediction": ".schemas", "Preprocessor": ".text"}
# The submodules that importing the package used to load (with the router), which code may
# therefore reach as attributes after a plain ``import lapor_nlp``.
_SUBMODULES = frozenset({"artifact", "chunks", "classifier", "columnar", "features", "heads", "io",
                         "jurisdiction", "resources", "router", "schemas", "taxonomy", "text"})


def __getattr__(name: str):
    from importlib import import_module

    module = _LAZY.get(name)
    if module is not None:
        value = getattr(import_module(module, __name__), name)
        globals()[name] = value
        return value
    if name in _SUBMODULES:  # ``lapor_nlp.text.Preprocessor`` after ``import lapor_nlp``
        return import_module(f".{name}", __name__)
    raise AttributeError(f"module 'lapor_nlp' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))


def load(path=None, *, quiet: bool = False, **options) -> "Router":
    """A Router for the model directory ``path``; with no path, the bundled default model, built
    from the project's corpus on first use (about 25-60 s, once per version; a message on stderr says
    so unless ``quiet``). ``options`` are :class:`Router`'s (``home_region``, ``scope``, ...)."""
    if path is None:
        from .training.default import ensure_default_model  # building is the training side's job

        path = ensure_default_model(quiet=quiet)
    from .router import Router

    return Router.load(path, **options)
