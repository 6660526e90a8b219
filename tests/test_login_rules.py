"""Who a token still signs in, how fresh the account names are, which OAuth providers are set up."""

from __future__ import annotations

import asyncio

import pytest

from smart_agent.config import ConfigError, Settings
from smart_agent.history.login import AccountNames, SignInLimit, honoured, oauth_identifier
from smart_agent.oauth import OAUTH_PROVIDER_VARS, oauth_providers
from smart_agent.web.origins import check_exposure


@pytest.mark.parametrize(
    ("identifier", "provider", "accounts", "expected"),
    [
        ("local", "local", frozenset(), True),
        ("local", "local", frozenset({"alice"}), False),  # an account exists: login is required
        ("local", "local", frozenset({"local"}), False),  # even an account named local: not by header
        ("alice", "password", frozenset({"alice"}), True),
        ("alice", "password", frozenset({"bob"}), False),  # removed account
        ("alice", "local", frozenset(), False),
        ("github:alice", "github", frozenset(), True),
        ("alice", "github", frozenset({"alice"}), False),  # not a provider:name identifier
        ("google:alice", "google", frozenset(), False),  # provider not set up
        ("alice", None, frozenset({"alice"}), False),
    ],
)
def test_honoured_when_token_names_a_user_then_only_current_logins_sign_in(
    identifier: str, provider: str | None, accounts: frozenset[str], expected: bool
) -> None:
    assert honoured(identifier, provider, accounts, ["github"]) is expected


def test_oauth_identifier_when_made_then_no_account_name_can_equal_it() -> None:
    from smart_agent.errors import AccountError
    from smart_agent.history.accounts import check_name

    with pytest.raises(AccountError):
        check_name(oauth_identifier("github", "alice"))


async def test_account_names_when_read_within_ttl_then_one_read_shared_then_read_again() -> None:
    now = [0.0]
    reads: list[int] = []
    gate = asyncio.Event()

    async def read() -> list[str]:
        reads.append(1)
        await gate.wait()
        return ["alice"] if len(reads) > 1 else []

    names = AccountNames(read, ttl=1.0, clock=lambda: now[0])
    first = [asyncio.create_task(names.get()) for _ in range(5)]
    await asyncio.sleep(0)
    gate.set()
    assert [await task for task in first] == [frozenset()] * 5 and len(reads) == 1
    now[0] = 0.9
    assert await names.get() == frozenset() and len(reads) == 1
    now[0] = 1.0
    assert await names.get() == frozenset({"alice"}) and len(reads) == 2


def test_oauth_providers_when_compared_with_chainlit_then_same_providers_and_variables() -> None:
    from chainlit.oauth_providers import providers

    chainlit = {type(p).__name__: tuple(p.env) for p in providers}
    assert sorted(chainlit.values()) == sorted(OAUTH_PROVIDER_VARS.values())


def test_oauth_providers_when_every_variable_of_one_is_set_then_only_it_is_on() -> None:
    assert oauth_providers({"OAUTH_GITHUB_CLIENT_ID": "id"}) == ()
    env = {"OAUTH_GITHUB_CLIENT_ID": "id", "OAUTH_GITHUB_CLIENT_SECRET": "s", "OAUTH_GOOGLE_CLIENT_ID": "x"}
    assert oauth_providers(env) == ("github",)


def test_check_exposure_when_history_on_then_the_refusal_says_how_to_add_an_account() -> None:
    with pytest.raises(ConfigError) as refused:
        check_exposure("0.0.0.0", Settings(history=True))
    assert "`smart-agent users add NAME`" in str(refused.value) and "OAuth" in str(refused.value)
    with pytest.raises(ConfigError) as refused:
        check_exposure("0.0.0.0", Settings(history=False))
    assert "users add" not in str(refused.value) and "history off" in str(refused.value)
    assert check_exposure("0.0.0.0", Settings(history=True), login=True) is None
    opted_out = Settings(expose_without_login=True)
    assert "WITHOUT authentication" in (check_exposure("0.0.0.0", opted_out) or "")


def test_oauth_app_user_when_github_signs_in_then_named_by_provider_and_its_token_is_honoured() -> None:
    from chainlit.user import User

    from smart_agent.web.login import oauth_app_user

    user = oauth_app_user("github", User(identifier="octocat", metadata={"image": "x"}))
    assert (user.identifier, user.display_name) == ("github:octocat", "octocat")
    assert user.metadata == {"image": "x", "provider": "github"}
    assert honoured(user.identifier, user.metadata["provider"], frozenset({"octocat"}), ["github"])


class _Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_sign_in_limit_when_a_name_fails_too_often_then_refused_until_the_oldest_failure_ages_out() -> None:
    clock = _Clock()
    limit = SignInLimit(per_name=3, per_address=10, window=60.0, clock=clock)
    for _ in range(3):
        assert limit.retry_after("10.0.0.1", "alice") == 0
        limit.failed("10.0.0.1", "alice")
        clock.now += 1
    assert limit.retry_after("10.0.0.1", "Alice ") == pytest.approx(57.0)  # names compare as typed loosely
    assert limit.retry_after("10.0.0.2", "alice") == 0  # another client
    assert limit.retry_after("10.0.0.1", "bob") == 0  # another name
    clock.now += 57.0
    assert limit.retry_after("10.0.0.1", "alice") == 0


def test_sign_in_limit_when_one_address_tries_many_names_then_the_address_is_refused() -> None:
    clock = _Clock()
    limit = SignInLimit(per_name=3, per_address=4, window=60.0, clock=clock)
    for name in ("a", "b", "c", "d"):
        limit.failed("10.0.0.1", name)
    assert limit.retry_after("10.0.0.1", "e") == pytest.approx(60.0)
    assert limit.retry_after("10.0.0.2", "e") == 0


def test_sign_in_limit_when_the_right_password_follows_failures_then_the_names_count_starts_again() -> None:
    clock = _Clock()
    limit = SignInLimit(per_name=2, per_address=10, window=60.0, clock=clock)
    limit.failed("10.0.0.1", "alice")
    limit.succeeded("10.0.0.1", "alice")
    limit.failed("10.0.0.1", "alice")
    assert limit.retry_after("10.0.0.1", "alice") == 0
