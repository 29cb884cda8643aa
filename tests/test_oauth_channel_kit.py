"""The conformance kit on an OAuth 2.0 channel: the plugin built on the toolkit passes every
check, and each defect an author of such a plugin could make fails the check meant for it,
with a message that says what to fix."""

from __future__ import annotations

from pathlib import Path

import pytest
from oauth_kit_support import OAuthShopSuite

pytest_plugins = ["pytester"]

HERE = Path(__file__).resolve().parent


class TestOAuthChannelConformance(OAuthShopSuite):
    pass


SUITE = """
import pytest
import oauth_channel
from oauth_kit_support import OAuthShopSuite


@pytest.fixture(autouse=True)
def broken(monkeypatch):
    monkeypatch.setattr(oauth_channel, "BREAKS", {BREAK!r})


class TestBroken(OAuthShopSuite):
    pass
"""

#: each defect, the one check that must fail on it, and what its message must say
DEFECTS = {
    "never_renews": ("test_an_access_token_is_kept_and_renewed_once_when_it_expires",
                     ["after the access token expired the download raised AuthError", "renew the access token"]),
    "own_store": ("test_an_access_token_is_kept_and_renewed_once_when_it_expires",
                  ["new access token(s) although the first one was still valid",
                   "store=credentials"]),
    "token_in_upload_error": ("test_no_secret_in_any_message",
                              ["an access or refresh token the plugin obtained appears in UploadResult "
                               "(after the access token was renewed)"]),
    "token_in_error": ("test_no_secret_in_any_message",
                       ["an access or refresh token the plugin obtained appears in ChannelError raised by "
                        "a hook (after the access token was renewed)"]),
    "cancel_unflagged": ("test_an_order_cancelled_on_the_channel_comes_back_flagged",
                         ["came back with channel_cancelled=False"]),
    "unit_price_is_line_total": ("test_amounts_are_the_channels",
                                 ["line 1-1: the plugin gives line_total = 400.00 but the channel states 200.00",
                                  "a line total is not a unit price"]),
    "grand_total_without_tax": ("test_amounts_are_the_channels",
                                ["order 0: the plugin gives grand_total = 99.90 but the channel states 119.88",
                                 "left out of the grand total"]),
    "offset_pages": ("test_download_loses_no_order_changed_while_it_runs",
                     ["with two orders changed during the download, it missed 1", "never by plain offsets"]),
}  # fmt: skip


@pytest.mark.parametrize("defect", sorted(DEFECTS))
def test_each_defect_fails_its_check_and_only_that_one(pytester: pytest.Pytester, defect: str) -> None:
    check, fragments = DEFECTS[defect]
    pytester.syspathinsert(HERE)
    pytester.makepyfile(test_broken=SUITE.replace("{BREAK!r}", repr(defect)))
    result = pytester.runpytest("-p", "no:cacheprovider", "-rf")
    output = result.stdout.str()
    failed = [line.split("::")[-1].split(" ")[0] for line in output.splitlines() if line.startswith("FAILED")]
    assert failed == [check], output[-3000:]
    for fragment in fragments:
        assert fragment in output, output[-3000:]
    assert "<secret>" in output or "secret" not in check
