"""Amazon channel plugin for cartplugin: the Selling Partner API (Orders 2026-01-01 and v0)."""

__version__ = "0.1.0"
