"""The toolkit's OAuth 2.0 auth against a real sandbox with its own token endpoint: one token
minted and shared, renewed once inside a request the API refuses, a rotated refresh token
kept, refusals that tell staff what to do, and no token in any message."""

from __future__ import annotations

import logging
import socket
import threading

import pytest
from oauth_shop import (
    CLIENT_ID,
    CLIENT_SECRET,
    REFRESH_TOKEN,
    OAuthShop,
    all_ids,
    api,
    client_credentials_auth,
    refresh_auth,
)

from plugin_spec import AuthError, BadData, TransientError
from plugin_spec.auth import OAuth2RefreshToken
from plugin_spec.credentials import MemoryCredentialStore
from plugin_spec.sandbox import Reply


@pytest.fixture
def shop():
    with OAuthShop() as server:
        yield server


def test_one_access_token_is_minted_and_reused_by_every_client_sharing_the_store(shop: OAuthShop) -> None:
    store = MemoryCredentialStore()
    for _ in range(3):
        with api(shop, refresh_auth(shop, store)) as client:
            assert client.request("GET", "/me") == {"name": "The OAuth Shop"}
            assert all_ids(client) == list(range(12))
    assert shop.tokens.mints() == 1
    record = store.load("oauth2")
    assert record is not None and record.version == 1 and record.expires_at is not None


def test_a_token_revoked_mid_listing_is_renewed_once_inside_the_request_and_paging_goes_on(shop: OAuthShop) -> None:
    store = MemoryCredentialStore()
    with api(shop, refresh_auth(shop, store)) as client:
        pages = client.pages("/orders", {"page-size": "5"})
        first = next(pages)
        shop.tokens.revoke_access_tokens()
        rest = [item["id"] for page in pages for item in page]
    assert [item["id"] for item in first] + rest == list(range(12))
    assert shop.tokens.mints() == 2
    assert shop.tokens.stats.expired_refusals >= 1
    assert store.load("oauth2").version == 2


def test_a_token_refused_again_after_renewing_is_an_auth_error_not_a_loop(shop: OAuthShop) -> None:
    refuse = Reply(401, {"error": {"code": "invalid_token", "message": "no"}})
    shop.auth.check = lambda headers, error: refuse  # type: ignore[method-assign]
    with api(shop, refresh_auth(shop, MemoryCredentialStore())) as client, pytest.raises(AuthError) as caught:
        client.request("GET", "/me")
    assert "refused the access token (HTTP 401" in str(caught.value)
    assert shop.tokens.mints() == 2  # the first token, and one renewal


def test_a_client_whose_renewed_token_is_refused_mints_no_more_tokens(shop: OAuthShop) -> None:
    """A refusal that is not about the token's age (a missing permission) costs one renewal, not one per request."""
    refuse = Reply(403, {"error": {"code": "Unauthorized", "message": "Access to requested resource is denied."}})
    shop.auth.check = lambda headers, error: refuse  # type: ignore[method-assign]
    with api(shop, refresh_auth(shop, MemoryCredentialStore(), renew_on=frozenset({401, 403}))) as client:
        for _ in range(3):
            with pytest.raises(AuthError):
                client.request("GET", "/me")
    assert shop.tokens.mints() == 2  # the first token, and one renewal


def test_an_unreachable_token_endpoint_is_named_in_the_error_not_the_api(shop: OAuthShop) -> None:
    closed = socket.socket()
    closed.bind(("127.0.0.1", 0))
    port = closed.getsockname()[1]
    closed.close()  # nothing listens there now
    auth = OAuth2RefreshToken(f"http://127.0.0.1:{port}/oauth2/token", CLIENT_ID, CLIENT_SECRET, REFRESH_TOKEN)
    with api(shop, auth) as client, pytest.raises(TransientError) as caught:
        client.request("GET", "/me")
    assert f"Could not reach http://127.0.0.1:{port}: nothing accepts connections there" in str(caught.value)
    assert shop.base_url not in str(caught.value)


def test_a_refused_refresh_token_is_an_auth_error_that_says_to_authorise_again_without_any_secret(
    shop: OAuthShop,
) -> None:
    wrong = "shop-refresh-token-revoked"
    with api(shop, refresh_auth(shop, None, refresh_token=wrong)) as client, pytest.raises(AuthError) as caught:
        client.request("GET", "/me")
    message = str(caught.value)
    assert "OAuth Shop refused the refresh token (invalid_grant" in message
    assert "Authorise the app again" in message
    for secret in (wrong, CLIENT_SECRET):
        assert secret not in message and secret not in repr(caught.value)
    assert shop.tokens.stats.refused == 1 and shop.tokens.mints() == 0


def test_a_wrong_client_secret_is_an_auth_error_naming_the_client_settings(shop: OAuthShop) -> None:
    auth = refresh_auth(shop, None, client_secret="not-the-client-secret")
    with api(shop, auth) as client, pytest.raises(AuthError) as caught:
        client.request("GET", "/me")
    assert "refused the client id or client secret (invalid_client" in str(caught.value)
    assert "not-the-client-secret" not in str(caught.value)


def test_a_refresh_token_rotated_by_the_channel_is_kept_and_used_for_the_next_refresh() -> None:
    with OAuthShop(rotate=True) as shop:
        store = MemoryCredentialStore()
        for round_ in range(3):
            with api(shop, refresh_auth(shop, store)) as client:
                assert client.request("GET", "/me")["name"] == "The OAuth Shop", round_
            shop.tokens.revoke_access_tokens()
        record = store.load("oauth2")
        assert shop.tokens.mints() == 3
        assert record.values["refresh_token"] not in (REFRESH_TOKEN, "")
        assert set(shop.tokens.refresh_tokens) == {record.values["refresh_token"]}  # the original is spent
        # staff entering a new refresh token starts a new record: the rotated one is not used for it
        shop.tokens.refresh_tokens["shop-refresh-token-0002"] = "shop-client-0001"
        with api(shop, refresh_auth(shop, store, refresh_token="shop-refresh-token-0002")) as client:
            client.request("GET", "/me")
        assert "shop-refresh-token-0002" not in shop.tokens.refresh_tokens  # it was the one used


def test_a_client_credentials_grant_authenticates_with_basic_auth_or_in_the_body(shop: OAuthShop) -> None:
    for how in ("basic", "body"):
        with api(shop, client_credentials_auth(shop, None, client_auth=how)) as client:
            assert client.request("GET", "/me")["name"] == "The OAuth Shop"
    assert shop.tokens.stats.minted["client_credentials"] == 2


def test_two_threads_that_need_a_token_at_once_mint_one(shop: OAuthShop) -> None:
    shop.set_faults(latency=0.2)  # the token request takes a while: both threads ask meanwhile
    store = MemoryCredentialStore()
    answers: list[object] = []

    def call() -> None:
        with api(shop, refresh_auth(shop, store)) as client:
            answers.append(client.request("GET", "/me"))

    threads = [threading.Thread(target=call) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(10)
    assert len(answers) == 2
    assert shop.tokens.mints() == 1


@pytest.mark.parametrize(
    "answer, expected",
    [
        pytest.param(Reply(200, {"token_type": "bearer"}), "without an access token", id="no-token"),
        pytest.param(Reply(200, raw=b"<html>login</html>"), "not a token answer", id="html"),
        pytest.param(Reply(200, {"access_token": "a\r\nX-Evil: 1"}), "cannot be used in a request", id="header-split"),
        pytest.param(Reply(200, {"access_token": "x" * 9000}), "cannot be used in a request", id="too-long"),
    ],
)
def test_a_token_answer_that_is_not_a_usable_token_is_bad_data(shop: OAuthShop, answer: Reply, expected: str) -> None:
    shop.auth.token = lambda method, headers, body: answer  # type: ignore[method-assign]
    with api(shop, refresh_auth(shop, None)) as client, pytest.raises(BadData) as caught:
        client.request("GET", "/me")
    assert expected in str(caught.value)


def test_a_huge_expires_in_is_capped_and_a_missing_one_means_used_until_refused(shop: OAuthShop) -> None:
    real = shop.auth.token
    shop.auth.token = lambda m, h, b: _with(real(m, h, b), expires_in=10**12)  # type: ignore[method-assign]
    store = MemoryCredentialStore()
    with api(shop, refresh_auth(shop, store)) as client:
        client.request("GET", "/me")
    record = store.load("oauth2")
    assert (record.expires_at - record.refreshed_at).days <= 366
    shop.auth.token = lambda m, h, b: _with(real(m, h, b), expires_in=None)  # type: ignore[method-assign]
    store = MemoryCredentialStore()
    with api(shop, refresh_auth(shop, store)) as client:
        client.request("GET", "/me")
        client.request("GET", "/me")
    assert store.load("oauth2").expires_at is None
    assert shop.tokens.mints() == 2  # one per store, none more


def test_no_token_or_secret_appears_in_any_log_record(shop: OAuthShop, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    store = MemoryCredentialStore()
    auth = refresh_auth(shop, store)
    with api(shop, auth) as client:
        all_ids(client)
        shop.tokens.revoke_access_tokens()
        all_ids(client)
    secrets = [*store.secret_values(), CLIENT_SECRET, REFRESH_TOKEN]
    assert len(secrets) >= 4
    text = "\n".join(record.getMessage() for record in caplog.records)
    assert "renewing it once" in text
    for secret in secrets:
        assert secret not in text


def _with(reply: Reply, **changes: object) -> Reply:
    body = dict(reply.body)
    for key, value in changes.items():
        if value is None:
            body.pop(key, None)
        else:
            body[key] = value
    return Reply(reply.status, body, reply.headers)
