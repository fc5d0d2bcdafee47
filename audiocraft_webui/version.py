"""The app's version, in a module of its own so that any layer can read it without importing the app factory."""

__version__ = "3.1.0"
