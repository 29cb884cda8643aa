"""The Cart General settings of an Amazon company: regions, marketplace ids, credentials."""

from __future__ import annotations

import pytest
from pydantic import SecretStr, ValidationError

from amazon_sp.settings import LWA_TOKEN_URLS, SP_API_URLS, TOKEN_PATH, AmazonSettings

GOOD = {
    "marketplace_ids": "A1PA6795UKMFR9",
    "lwa_client_id": "amzn1.application-oa2-client.0123456789abcdef",
    "lwa_client_secret": "amzn1.oa2-cs.v1.0123456789abcdef",
    "refresh_token": "Atzr|IwEBIexample-refresh-token",
}


def settings(**changes: object) -> AmazonSettings:
    return AmazonSettings.model_validate({**GOOD, **changes})


def test_each_region_talks_to_its_own_sp_api_and_login_with_amazon_hosts() -> None:
    for region in ("na", "eu", "fe"):
        chosen = settings(region=region)
        assert chosen.base_url == SP_API_URLS[region] and chosen.token_url == LWA_TOKEN_URLS[region]
    assert settings().region == "eu"
    assert settings(region=" DE ").region == "eu" and settings(region="us").region == "na"
    assert settings(region="jp").region == "fe"
    with pytest.raises(ValidationError):
        settings(region="mars")


def test_a_sandbox_url_brings_its_token_endpoint_along_unless_one_is_given() -> None:
    local = settings(api_url="http://127.0.0.1:8771/")
    assert local.base_url == "http://127.0.0.1:8771" and local.token_url == "http://127.0.0.1:8771" + TOKEN_PATH
    apart = settings(api_url="http://127.0.0.1:8771", lwa_token_url="http://127.0.0.1:9000/auth/o2/token")
    assert apart.token_url == "http://127.0.0.1:9000/auth/o2/token"
    for url in ("http://sellingpartnerapi-eu.amazon.com", "ftp://x.example", "https://u:p@x.example"):
        with pytest.raises(ValidationError):
            settings(api_url=url)


def test_marketplace_ids_are_a_clean_list_of_at_most_fifty() -> None:
    assert settings(marketplace_ids=" a1pa6795ukmfr9, A13V1IB3VIYZZH;A1PA6795UKMFR9 ").marketplaces == [
        "A1PA6795UKMFR9",
        "A13V1IB3VIYZZH",
    ]
    for bad in ("", " , ", "A1PA6795UKMFR9,not an id", ",".join(f"A{n:010d}" for n in range(51))):
        with pytest.raises(ValidationError):
            settings(marketplace_ids=bad)


def test_credentials_are_secret_and_header_safe() -> None:
    chosen = settings()
    assert isinstance(chosen.lwa_client_secret, SecretStr) and isinstance(chosen.refresh_token, SecretStr)
    assert GOOD["refresh_token"] not in repr(chosen) and GOOD["lwa_client_secret"] not in str(chosen)
    for field in ("lwa_client_secret", "refresh_token", "lwa_client_id"):
        with pytest.raises(ValidationError) as caught:
            settings(**{field: "has a space in it"})
        # the host shows errors without their input (errors(include_input=False)): the message alone
        (problem,) = caught.value.errors(include_input=False, include_url=False)
        assert "has a space" not in str(problem) and "spaces" in problem["msg"]
    with pytest.raises(ValidationError):
        settings(commission_percent="101")
    assert settings(commission_percent="12.5").commission_percent is not None
