"""The conformance kit fails a broken plugin with messages that say what to fix, and stays
out of the way of projects that did not opt in."""

from __future__ import annotations

from pathlib import Path

import pytest

pytest_plugins = ["pytester"]

HERE = Path(__file__).resolve().parent

SUITE = """
import pytest
import kit_broken_plugin as broken
from plugin_spec.testing import ConformanceSuite


class TestBrokenConformance(ConformanceSuite):
    @pytest.fixture
    def cartplugin_kit_plugin(self):
        return broken

    @pytest.fixture
    def cartplugin_kit_channel(self):
        return broken.reset()

    @pytest.fixture
    def cartplugin_kit_settings(self, cartplugin_kit_channel):
        return broken.BrokenSettings(api_key=broken.GOOD_KEY)

    @pytest.fixture
    def cartplugin_kit_bad_key_settings(self, cartplugin_kit_channel):
        return broken.BrokenSettings(api_key="wrong-key-8086")
"""

#: each failing check and the fragments its message must contain (what is wrong, what to fix)
EXPECTED = {
    "test_hooks_match_the_specs": ["unknown hook", "cartplugin_download_order", "What to fix: name each hook exactly"],
    "test_channel_info_is_complete": ["settings fields without a title: ['shop_name']", "Field(title=...)"],
    "test_settings_model_marks_secrets": ["['api_key'] look like credentials", "exactly `SecretStr`"],
    "test_test_settings_fails_readably_on_a_wrong_key": ["returned ok=True with a wrong key", "401/403"],
    "test_download_streams_every_unfulfilled_order_once": [
        "returned list",
        "not an iterator",
        "make the hook a generator",
    ],
    "test_download_respects_since": ["yielded orders updated before it", "since"],
    "test_download_with_a_wrong_key_raises_a_channel_error": ["a secret settings value appears in the wrong-key error"],
    "test_upload_returns_one_result_per_shipment": [
        "cartplugin_upload_tracking raised KeyError",
        "UploadResult(ok=False",
    ],
    "test_upload_repeat_is_already_recorded": ["raised ChannelError", "already_recorded=True"],
    "test_no_secret_in_any_message": ["a secret settings value appears in", "never format a key or token"],
    "test_an_order_cancelled_on_the_channel_comes_back_flagged": [
        "was cancelled on the channel but came back with channel_cancelled=False",
        "map the channel's cancelled state",
    ],
    "test_a_line_cancelled_on_the_channel_comes_back_flagged": [
        "line BRK-",
        "was cancelled on the channel but came back with channel_cancelled=False",
        "OrderLine(channel_cancelled=True)",
    ],
    **{
        f"test_transient_trouble_is_classified_so_the_host_retries[{fault}]": [
            f"answering {fault!r} the download raised BadData",
            kind,
            "plugin_spec.http.JsonApi",
        ]
        for fault, kind in (
            ("rate_limited", "RateLimited"),
            ("server_error", "a 5xx answer"),
            ("timeout", "timeout is plugin_spec.TransientError"),
            ("cut_off_body", "never BadData"),
        )
    },
}


@pytest.fixture
def kit_run(pytester: pytest.Pytester):
    pytester.syspathinsert(HERE)
    pytester.makepyfile(test_broken_conformance=SUITE)
    return pytester.runpytest("-p", "no:cacheprovider", "-rf")


def failure_sections(output: str) -> dict[str, str]:
    """The text pytest printed under each failing test's ``____ Class.test ____`` banner."""
    sections: dict[str, str] = {}
    current = None
    for line in output.splitlines():
        if line.startswith("_") and "TestBrokenConformance." in line:
            current = line.split("TestBrokenConformance.")[1].split()[0]
            sections[current] = ""
        elif line.startswith("=") and current:
            current = None
        elif current:
            sections[current] += line + "\n"
    return sections


def test_the_broken_plugin_fails_the_kit_with_useful_messages(kit_run):
    output = kit_run.stdout.str()
    # the accept, lost-answer, token, changed-orders and amounts checks skip: the broken plugin
    # declares no accept_orders, its sandbox can neither lose an answer nor change orders
    # mid-download nor state its amounts, and its channel has no access tokens
    kit_run.assert_outcomes(passed=1, failed=len(EXPECTED), skipped=5)
    assert "test_test_settings_succeeds_with_good_settings PASSED" in output or "1 passed" in output
    sections = failure_sections(output)
    assert set(sections) == set(EXPECTED), output
    for name, fragments in EXPECTED.items():
        for fragment in fragments:
            assert fragment in sections[name], f"{name}: {fragment!r} not in\n{sections[name]}"
        assert sections[name].strip().startswith("cartplugin kit:"), sections[name]
        assert "Traceback" not in sections[name]


def test_kit_messages_never_print_the_secret(kit_run):
    output = kit_run.stdout.str()
    assert "broken-good-key-5150" not in output and "wrong-key-8086" not in output
    assert "<secret>" in output


def test_nothing_is_collected_without_opting_in(pytester: pytest.Pytester):
    pytester.makepyfile(
        test_plain="""
        import plugin_spec.testing
        from plugin_spec.testing import ConformanceSuite, KitChannel

        def test_one():
            assert True
        """
    )
    result = pytester.runpytest("-p", "no:cacheprovider")
    result.assert_outcomes(passed=1)
    assert "cartplugin_kit" in str(pytester.parseconfig().pluginmanager.list_name_plugin())


def test_missing_fixture_says_how_to_define_it(pytester: pytest.Pytester):
    pytester.makepyfile(
        test_half="""
        from plugin_spec.testing import ConformanceSuite

        class TestHalf(ConformanceSuite):
            pass
        """
    )
    result = pytester.runpytest("-p", "no:cacheprovider", "-k", "test_hooks_match_the_specs")
    result.assert_outcomes(errors=1)  # a fixture that fails is an error in its test's setup
    result.stdout.fnmatch_lines(
        ["*the fixture 'cartplugin_kit_plugin' is not defined*", "*define `cartplugin_kit_plugin`*"]
    )
