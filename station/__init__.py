"""Rooming station: vital-sign devices in; checked readings and the chief complaint out."""

__version__ = "0.1.0"
