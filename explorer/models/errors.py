"""The load error every page catches, in a module without torch (the error boundary imports it
before any model is needed)."""


class ModelLoadError(RuntimeError):
    """Loading failed; ``str(error)`` is one readable sentence."""
