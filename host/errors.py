"""Errors the host raises for people: one readable line, turned into a CLI error at the edge."""


class HostError(Exception):
    """A request the host refuses or cannot carry out; ``str()`` is the line shown to the user."""


class NotFound(HostError):
    """An unknown company, order, job or plugin."""


class InvalidSettings(HostError):
    """Settings that fail validation; nothing was saved."""
