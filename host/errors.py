"""Errors the host raises for people: one readable line, turned into a CLI error at the edge."""


class HostError(Exception):
    """A request the host refuses or cannot carry out; ``str()`` is the line shown to the user.

    That line is in staff words (it reaches the web admin as it is); ``cli_hint``, when given,
    is the command that does what the line asks, which only the CLI adds to it.
    """

    def __init__(self, *args: object, cli_hint: str | None = None) -> None:
        super().__init__(*args)
        self.cli_hint = cli_hint

    def for_cli(self) -> str:
        """The line as the CLI shows it: with the command to run, when there is one."""
        return f"{self} ({self.cli_hint})" if self.cli_hint else str(self)


class NotFound(HostError):
    """An unknown company, order, job or plugin."""


class InvalidSettings(HostError):
    """Settings that fail validation; nothing was saved."""
