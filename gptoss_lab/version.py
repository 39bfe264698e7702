"""The version of gptoss-lab (``lab.__version__``)."""

__version__ = "0.1.0"
