"""The sign-in authorizer against real tokens: local keys, a local JWKS, PyJWT end to end."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import authorizer
from tests.support.events import LambdaContext
from tests.support.profiles import examples
from tests.support.sign_in import (
    AUDIENCE,
    EC_KID,
    METHOD_ARN,
    NAME_CLAIM,
    authorizer_event,
    claims_for,
    jwks_server,
    mint,
    signing_keys,
)


def authorize(event: dict[str, Any]) -> dict[str, Any]:
    return authorizer.handler(event, LambdaContext())


def assert_allowed(result: dict[str, Any], name: str = "alice", account: str = "") -> None:
    """Allowed, with the context of the account `claims_for` makes for `account` (or `name`)."""
    assert result["policyDocument"] == {
        "Version": "2012-10-17",
        "Statement": [{"Action": "execute-api:Invoke", "Effect": "Allow", "Resource": METHOD_ARN}],
    }
    sub = claims_for("x", name=account or name)["sub"]
    assert result["principalId"] == sub
    assert result["context"] == {"sub": sub, "name": name}


def assert_denied(result: dict[str, Any]) -> None:
    assert result["policyDocument"]["Statement"] == [
        {"Action": "execute-api:Invoke", "Effect": "Deny", "Resource": METHOD_ARN}
    ]
    assert "context" not in result


def denial_reason(capsys: pytest.CaptureFixture[str]) -> str:
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines() if line]
    (denied,) = [line for line in lines if line["message"] == "sign-in denied"]
    return str(denied["reason"])


def b64(data: dict[str, Any]) -> str:
    return base64.urlsafe_b64encode(json.dumps(data).encode()).rstrip(b"=").decode()


# --- allowed ------------------------------------------------------------------------------


def test_valid_rs256_id_token_is_allowed_with_sub_and_name_as_context(issuer):
    result = authorize(authorizer_event(token=mint(claims_for(issuer))))
    assert_allowed(result)
    assert all(isinstance(v, str) for v in result["context"].values())


def test_valid_es256_token_is_allowed(issuer):
    token = mint(claims_for(issuer, name="bob"), alg="ES256", kid=EC_KID)
    assert_allowed(authorize(authorizer_event(token=token)), name="bob")


def test_token_offered_as_a_subprotocol_is_allowed(issuer, monkeypatch):
    monkeypatch.setenv("SIGN_IN_TOKEN_SOURCE", "protocol")
    token = mint(claims_for(issuer))
    assert_allowed(authorize(authorizer_event(protocol=f"chat, {token}")))


def test_the_name_comes_from_the_configured_claim(issuer, monkeypatch):
    monkeypatch.setenv("SIGN_IN_NAME_CLAIM", "preferred_username")
    token = mint(claims_for(issuer, preferred_username="Carol"))
    assert_allowed(authorize(authorizer_event(token=token)), name="Carol", account="alice")


def test_clock_skew_within_the_leeway_is_tolerated(issuer):
    now = int(time.time())
    skew = authorizer.LEEWAY_SECONDS // 2
    token = mint(claims_for(issuer, exp=now - skew, iat=now + skew, nbf=now + skew))
    assert_allowed(authorize(authorizer_event(token=token)))


def test_an_audience_list_containing_ours_is_allowed(issuer):
    token = mint(claims_for(issuer, aud=["another-client", AUDIENCE]))
    assert_allowed(authorize(authorizer_event(token=token)))


def test_allow_is_logged_with_the_subject_and_never_the_token(issuer, capsys):
    token = mint(claims_for(issuer))
    authorize(authorizer_event(token=token))
    out = capsys.readouterr().out
    (line,) = [json.loads(x) for x in out.splitlines() if x]
    assert line["message"] == "sign-in allowed"
    assert line["sub"] == claims_for(issuer)["sub"]
    assert line["connectionId"] == "AAAAAAAAAAAAAAA="
    assert token not in out


# --- denied -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("overrides", "reason"),
    [
        ({"exp": int(time.time()) - 3600}, "ExpiredSignatureError"),
        ({"nbf": int(time.time()) + 3600}, "ImmatureSignatureError"),
        ({"iat": int(time.time()) + 3600}, "ImmatureSignatureError"),
        ({"aud": "some-other-client"}, "InvalidAudienceError"),
        ({"iss": "https://cognito-idp.us-east-1.amazonaws.com/us-east-1_Other"}, "Issuer"),
        ({"exp": None}, 'missing the "exp" claim'),
        ({"iat": None}, 'missing the "iat" claim'),
        ({"sub": None}, 'missing the "sub" claim'),
        ({NAME_CLAIM: None}, f"claim {NAME_CLAIM!r} is missing"),
        ({NAME_CLAIM: ""}, f"claim {NAME_CLAIM!r} is missing"),
        ({NAME_CLAIM: 42}, f"claim {NAME_CLAIM!r} is missing"),
        ({NAME_CLAIM: "x" * 129}, "longer than 128"),
        ({"sub": "s" * 129}, "longer than 128"),
        ({"token_use": "access"}, "token_use"),
    ],
    ids=[
        "expired",
        "not-yet-valid",
        "issued-in-the-future",
        "wrong-audience",
        "wrong-issuer",
        "no-exp",
        "no-iat",
        "no-sub",
        "no-name-claim",
        "empty-name",
        "name-not-a-string",
        "name-too-long",
        "sub-too-long",
        "access-token-use",
    ],
)
def test_invalid_claims_are_denied_with_the_reason_logged(issuer, capsys, overrides, reason):
    token = mint(claims_for(issuer, **overrides))
    assert_denied(authorize(authorizer_event(token=token)))
    logged = denial_reason(capsys)
    assert reason in logged
    assert token not in logged


def test_cognito_access_token_is_denied_for_want_of_an_audience(issuer, capsys):
    # Access tokens carry client_id and username, not aud: the chat wants ID tokens.
    claims = claims_for(issuer, aud=None, token_use="access", client_id=AUDIENCE)
    assert_denied(authorize(authorizer_event(token=mint(claims))))
    assert 'missing the "aud" claim' in denial_reason(capsys)


def test_token_signed_by_a_key_not_in_the_jwks_is_denied(issuer, capsys):
    token = mint(claims_for(issuer), key=signing_keys().stranger)  # the issuer's kid, though
    assert_denied(authorize(authorizer_event(token=token)))
    assert "InvalidSignatureError" in denial_reason(capsys)


def test_token_with_a_tampered_payload_is_denied(issuer, capsys):
    header, _, signature = mint(claims_for(issuer)).split(".")
    forged = f"{header}.{b64(claims_for(issuer, name='admin'))}.{signature}"
    assert_denied(authorize(authorizer_event(token=forged)))
    assert "InvalidSignatureError" in denial_reason(capsys)


def test_alg_none_is_denied(issuer, capsys):
    token = jwt.encode(claims_for(issuer), "", algorithm="none", headers={"kid": "rsa-key-1"})
    assert token.endswith(".")
    assert_denied(authorize(authorizer_event(token=token)))
    assert "algorithm 'none' is not allowed" in denial_reason(capsys)


def test_hs256_signed_with_the_public_key_is_denied(issuer, capsys):
    # The classic confusion attack: HMAC keyed with the issuer's public key (which is public).
    public_pem = (
        signing_keys()
        .rsa.public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    )
    header = b64({"alg": "HS256", "typ": "JWT", "kid": "rsa-key-1"})
    payload = b64(claims_for(issuer))
    mac = hmac.new(public_pem, f"{header}.{payload}".encode(), hashlib.sha256).digest()
    token = f"{header}.{payload}.{base64.urlsafe_b64encode(mac).rstrip(b'=').decode()}"
    assert_denied(authorize(authorizer_event(token=token)))
    assert "algorithm 'HS256' is not allowed" in denial_reason(capsys)


def test_rs256_token_presented_under_the_ec_kid_is_denied(issuer, capsys):
    token = mint(claims_for(issuer), alg="RS256", kid=EC_KID)
    assert_denied(authorize(authorizer_event(token=token)))
    assert "does not match the key" in denial_reason(capsys)


@pytest.mark.parametrize(
    "token",
    ["not-a-jwt", "a.b.c", "e30.e30.", "....", "eyJhbGciOiJSUzI1NiJ9.%%%.abc", "x" * 9000],
    ids=["no-dots", "garbage-segments", "empty-objects", "only-dots", "bad-base64", "too-long"],
)
def test_malformed_tokens_are_denied(issuer, capsys, token):
    assert_denied(authorize(authorizer_event(token=token)))
    assert denial_reason(capsys)


def test_unknown_kid_and_missing_kid_are_denied(issuer, capsys):
    assert_denied(authorize(authorizer_event(token=mint(claims_for(issuer), kid="rotated-away"))))
    assert "no signing key" in denial_reason(capsys)
    assert_denied(authorize(authorizer_event(token=mint(claims_for(issuer), kid=None))))
    assert "no kid" in denial_reason(capsys)


def test_missing_or_repeated_token_parameter_is_denied(issuer, capsys):
    assert_denied(authorize(authorizer_event()))
    assert "no token" in denial_reason(capsys)
    event = authorizer_event(token=mint(claims_for(issuer)))
    event["multiValueQueryStringParameters"]["token"].append("second")
    assert_denied(authorize(event))
    assert "more than one" in denial_reason(capsys)


def test_subprotocol_source_needs_exactly_one_token_in_the_header(issuer, monkeypatch, capsys):
    monkeypatch.setenv("SIGN_IN_TOKEN_SOURCE", "protocol")
    token = mint(claims_for(issuer))
    # A token in the query string does not count when the header is the source.
    assert_denied(authorize(authorizer_event(token=token)))
    assert "no Sec-WebSocket-Protocol header" in denial_reason(capsys)
    assert_denied(authorize(authorizer_event(protocol="chat")))
    assert "offers 0 tokens" in denial_reason(capsys)
    assert_denied(authorize(authorizer_event(protocol=f"{token}, {token}")))
    assert "offers 2 tokens" in denial_reason(capsys)


JWT_SHAPED = st.from_regex(r"[A-Za-z0-9_-]{1,40}(\.[A-Za-z0-9_-]{0,40}){2}", fullmatch=True)
JSON_HEADER = st.fixed_dictionaries(
    {"alg": st.sampled_from(["RS256", "ES256", "HS256", "none", "PS256"])},
    optional={"kid": st.sampled_from(["rsa-key-1", "ec-key-1", "other"]), "typ": st.just("JWT")},
)


@settings(max_examples=examples(200), deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    token=st.text(min_size=1, max_size=300)
    | JWT_SHAPED
    | st.tuples(JSON_HEADER, st.dictionaries(st.text(max_size=10), st.integers()), JWT_SHAPED).map(
        lambda t: f"{b64(t[0])}.{b64(t[1])}.{t[2].rsplit('.', 1)[-1]}"
    )
)
def test_arbitrary_strings_are_never_allowed(jwks, token):
    verifier = authorizer.Settings(issuer=jwks.issuer, audience=AUDIENCE, jwks_url=jwks.url)
    with pytest.raises(authorizer.DeniedError):
        authorizer.verify(token, verifier, CLIENT.setdefault(jwks.url, jwt.PyJWKClient(jwks.url)))


CLIENT: dict[str, jwt.PyJWKClient] = {}


# --- the JWKS client ----------------------------------------------------------------------


def test_the_jwks_is_fetched_once_per_execution_environment(issuer, jwks):
    before = jwks.requests
    for name in ("alice", "bob", "carol"):
        assert_allowed(authorize(authorizer_event(token=mint(claims_for(issuer, name=name)))), name)
    assert jwks.requests - before == 1
    assert authorizer.jwks_client(jwks.url) is authorizer.jwks_client(jwks.url)


def test_an_unreachable_jwks_fails_the_invocation_rather_than_denying(issuer, monkeypatch):
    # Not the token's fault: API Gateway answers 500 and the function's Errors metric shows it.
    with jwks_server() as gone:
        url = gone.url
    monkeypatch.setenv("SIGN_IN_JWKS_URL", url)
    with pytest.raises(jwt.PyJWKClientConnectionError):
        authorize(authorizer_event(token=mint(claims_for(issuer))))


def test_settings_name_the_missing_or_wrong_variable():
    with pytest.raises(KeyError, match="SIGN_IN_AUDIENCE"):
        authorizer.Settings.from_env({"SIGN_IN_ISSUER": "https://x", "SIGN_IN_JWKS_URL": "h"})
    env = {
        "SIGN_IN_ISSUER": "https://issuer.example",
        "SIGN_IN_AUDIENCE": AUDIENCE,
        "SIGN_IN_JWKS_URL": "https://issuer.example/.well-known/jwks.json",
    }
    assert authorizer.Settings.from_env(env).name_claim == "cognito:username"
    assert authorizer.Settings.from_env(env).token_source == "query"
    with pytest.raises(ValueError, match="SIGN_IN_TOKEN_SOURCE"):
        authorizer.Settings.from_env({**env, "SIGN_IN_TOKEN_SOURCE": "cookie"})


def test_only_asymmetric_algorithms_are_accepted():
    assert set(authorizer.ALGORITHMS) == {"RS256", "ES256"}


# --- groups (private rooms: docs/rooms-design.md) -----------------------------------------

GROUPS_CLAIM = "cognito:groups"


def allowed_context(issuer: str, **claims: Any) -> dict[str, str]:
    result = authorize(authorizer_event(token=mint(claims_for(issuer, **claims))))
    assert result["policyDocument"]["Statement"][0]["Effect"] == "Allow"
    return dict(result["context"])


def test_the_groups_claims_list_is_passed_on_comma_joined(issuer):
    context = allowed_context(issuer, **{GROUPS_CLAIM: ["sre", "eu-west-1_AbC_Admins"]})
    assert context["groups"] == "sre,eu-west-1_AbC_Admins"
    assert context["sub"] and context["name"] == "alice"


def test_without_the_groups_claim_the_context_has_no_groups_key(issuer):
    assert allowed_context(issuer) == {"sub": claims_for(issuer)["sub"], "name": "alice"}


def test_a_groups_claim_that_leaves_nothing_gives_no_groups_key(issuer):
    assert "groups" not in allowed_context(issuer, **{GROUPS_CLAIM: []})
    assert "groups" not in allowed_context(issuer, **{GROUPS_CLAIM: ["a,b", ""]})


def test_a_single_string_is_one_group(issuer):
    assert allowed_context(issuer, **{GROUPS_CLAIM: "sre"})["groups"] == "sre"
    # One string with a comma in it is not a list of two: it is dropped.
    assert "groups" not in allowed_context(issuer, **{GROUPS_CLAIM: "sre,ops"})


def test_values_with_a_comma_are_dropped_and_the_rest_kept(issuer, capsys):
    context = allowed_context(issuer, **{GROUPS_CLAIM: ["ops", "sre,admins", "dev"]})
    # "sre,admins" would read back as two groups the token never gave.
    assert context["groups"] == "ops,dev"
    (line,) = [json.loads(x) for x in capsys.readouterr().out.splitlines() if x]
    assert (line["groups"], line["groupsDropped"]) == (2, 1)
    assert "sre,admins" not in json.dumps(line)  # counted, never logged


@pytest.mark.parametrize(
    ("value", "kept"),
    [
        (["sre", "sre", "ops"], ("sre", "ops")),
        (["sre", 42, None, {"x": 1}, ["ops"], True], ("sre",)),
        ([" sre", "sre ", "s re"], ("s re",)),
        (["", "x" * 128, "y" * 129], ("x" * 128,)),
        (["équipe", "team\u200b", "tab\there", "ok~!"], ("ok~!",)),
        (42, ()),
        ({"sre": True}, ()),
        (None, ()),
    ],
    ids=[
        "repeats",
        "not-strings",
        "spaces-at-the-ends",
        "empty-and-too-long",
        "not-printable-ascii",
        "a-number",
        "an-object",
        "null",
    ],
)
def test_only_values_that_could_be_a_rooms_group_are_kept(value, kept):
    groups, dropped = authorizer.groups_from(value)
    assert groups == kept
    values = [value] if isinstance(value, str) else value if isinstance(value, list) else None
    assert dropped == (len(values) - len(kept) if values is not None else int(value is not None))


def test_a_huge_list_is_cut_to_whole_groups_within_the_cap(issuer, capsys):
    many = [f"group-{i:04d}" for i in range(400)]  # 4,399 characters joined
    context = allowed_context(issuer, **{GROUPS_CLAIM: many})
    kept = context["groups"].split(",")
    assert len(context["groups"]) <= authorizer.MAX_GROUPS_CHARS
    assert kept == many[: len(kept)]  # the first ones, in the claim's order, none cut
    assert len(context["groups"]) + len(",group-0000") > authorizer.MAX_GROUPS_CHARS
    (line,) = [json.loads(x) for x in capsys.readouterr().out.splitlines() if x]
    assert line["groupsDropped"] == 400 - len(kept)


@settings(max_examples=examples(200), deadline=None)
@given(st.lists(st.text(max_size=140) | st.integers() | st.none(), max_size=300))
def test_any_claim_value_gives_groups_that_read_back_as_given(value):
    groups, dropped = authorizer.groups_from(value)
    joined = ",".join(groups)
    assert len(joined) <= authorizer.MAX_GROUPS_CHARS
    assert (joined.split(",") if joined else []) == list(groups)  # no value splits in two
    assert len(set(groups)) == len(groups)
    assert all(g in value and 1 <= len(g) <= 128 and g.strip() == g for g in groups)
    assert dropped == len(value) - len(groups)


def test_the_groups_claim_is_configurable(issuer, monkeypatch):
    monkeypatch.setenv("SIGN_IN_GROUPS_CLAIM", "groups")
    context = allowed_context(issuer, groups=["okta-sre"], **{GROUPS_CLAIM: ["ignored"]})
    assert context["groups"] == "okta-sre"
    env = {
        "SIGN_IN_ISSUER": "https://issuer.example",
        "SIGN_IN_AUDIENCE": AUDIENCE,
        "SIGN_IN_JWKS_URL": "https://issuer.example/.well-known/jwks.json",
    }
    assert authorizer.Settings.from_env(env).groups_claim == GROUPS_CLAIM


def test_the_largest_allow_result_fits_api_gateways_8_kb():
    # sub and name at 128 characters that JSON escapes to 12 bytes each, groups at the cap
    # in characters that escape to two: still under the 8 KB quota (docs/aws-facts.md).
    longest = "\U0001f600" * authorizer.MAX_CLAIM_CHARS
    quote_groups = ['"' * 127 + "x"] * 20
    groups, _ = authorizer.groups_from([f"{i}{g}"[:128] for i, g in enumerate(quote_groups)])
    assert len(",".join(groups)) > authorizer.MAX_GROUPS_CHARS - 128
    identity = authorizer.Identity(sub=longest, name=longest, groups=groups)
    arn = METHOD_ARN.replace("abcdef123", "a" * 10) + "x" * 200  # a long stage name
    result = {
        "principalId": identity.sub,
        "policyDocument": authorizer.policy("Allow", arn),
        "context": identity.context(),
    }
    assert len(json.dumps(result).encode()) < 8192
