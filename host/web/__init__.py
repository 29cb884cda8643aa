"""The web admin: the support-staff screens in a browser, on the same host functions as the CLI."""

from host.web.app import create_app

__all__ = ["create_app"]
