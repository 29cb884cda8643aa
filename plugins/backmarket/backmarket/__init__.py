"""Back Market channel plugin for cartplugin: the regular Back Market seller API (``/ws/``)."""

__version__ = "0.1.0"
