"""Test Settings: the plugin's one cheap check of the company's settings, bounded in all.

Its outcome is recorded for the settings as they are now (``companies.record_test_result``);
the gate lets nothing automatic run before it passed. As a Queued Job it is
``host.channel.connection_test``.
"""

from __future__ import annotations

from host import config
from host.channel import plugins
from host.channel.gate import channel_settings, redact
from host.jobs import bounded
from host.records import companies
from host.records.companies import Company
from host.records.credentials import DbCredentialStore
from host.store.api import Store
from plugin_spec import TestResult


def test_settings(db: Store, company: Company, *, seconds: float | None = None) -> TestResult:
    """Run the plugin's check and record the outcome for the settings as they are now.

    The whole check, retries included, gets ``seconds`` (default: the ``test_settings_seconds``
    setting); a channel silent that long fails the test with a message that says so.
    """
    seconds = config.current().test_settings_seconds if seconds is None else seconds
    version = companies.settings_version(db, company)
    channel, settings = channel_settings(db, company)
    hook = plugins.hook_for(channel, "cartplugin_test_settings")
    credentials = DbCredentialStore.of(db, company.id, channel)
    outcome = bounded.call_within(
        lambda: hook(settings=settings, credentials=credentials), seconds, after=credentials.close
    )
    result = outcome.value
    if outcome.out_of_time and not (isinstance(result, TestResult) and result.ok):
        result = TestResult(ok=False, message=silent_channel(seconds))
    elif isinstance(outcome.error, Exception):  # a plugin should return ok=False, but a crash must not leak
        result = TestResult(ok=False, message=f"the plugin failed: {type(outcome.error).__name__}: {outcome.error}")
    elif outcome.error is not None:
        raise outcome.error
    if not isinstance(result, TestResult):
        result = TestResult(ok=False, message=f"plugin {channel!r} returned no TestResult")
    result = result.model_copy(update={"message": redact(result.message, settings, credentials)})
    if not companies.record_test_result(db, company, version, result.ok, result.message):
        return TestResult(ok=False, message="the settings changed while they were being tested; test again")
    return result


def silent_channel(seconds: float) -> str:
    """What Test Settings says when the channel did not answer within its time."""
    return f"The channel did not answer within {seconds:g} s; try again later, or check the address in the settings."
