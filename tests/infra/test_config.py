"""Context keys: validation of the abuse-limit and origin keys, and one source per setting:
lambda_src/chat/settings.json's defaults and ranges are the ones the stack, the function,
the load test, docs/configuration.md and README's short table use."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
from aws_cdk import App
from hypothesis import given, settings
from hypothesis import strategies as st

from app import build_app
from bench import load
from chat import deadline, sharding, telemetry, wiring
from chat import settings as function_settings
from chat.settings import Settings
from infra import config as infra_config
from infra import function_settings as infra_function_settings
from infra import monitoring, powertools
from infra.config import (
    DEFAULTS,
    LOOPBACK_ORIGINS,
    THROTTLED_ROUTES,
    ChatConfig,
    ConfigError,
    RouteThrottle,
)
from infra.config_docs import CONTEXT_ONLY_KEYS, INFRA_KEYS, render
from infra.function_settings import BY_KEY as FUNCTION_SETTINGS_BY_KEY
from infra.function_settings import FUNCTION_SETTINGS, FunctionSetting
from tests.support.profiles import examples
from tools import conformance

ROOT = Path(__file__).resolve().parents[2]


# A value for each key that turns on an optional integration (settings.json's onlyWith).
INTEGRATION_EXAMPLES = {
    "reviewHook": "hooks/wordlist",
    "reviewHookArn": "arn:aws:lambda:eu-west-1:123456789012:function:review",
    "eventBusName": "default",
}


def config_with(**context: Any) -> ChatConfig:
    return ChatConfig.from_context(App(context=context).node)


@pytest.mark.parametrize(
    ("key", "value"),
    [
        ("routeThrottling", "[1, 2]"),
        ("routeThrottling", "{not json"),
        ("routeThrottling", {"$disconnect": {"burst": 1, "rate": 1}}),
        ("routeThrottling", {"sendPublic": {"burst": 0}}),
        ("routeThrottling", {"sendPublic": {"rate": 10001}}),
        ("routeThrottling", {"setName": {"burst": "many"}}),
        ("reservedConcurrency", -1),
        ("reservedConcurrency", "lots"),
        ("reservedConcurrency", 10001),
        ("messageBurst", 0),
        ("messageRatePerSecond", 0),
        ("messageRatePerSecond", "fast"),
        ("nameBurst", 101),
        ("nameRatePerSecond", 0),
        ("rateLimitStrikes", 0),
        ("maxRoomSize", 1),
        ("maxRoomSize", 100_001),
        ("memberListThreshold", 1),
        ("memberListThreshold", 241),
        ("memberPartitions", 0),
        ("memberPartitions", 17),
        ("memberPartitions", "several"),
        ("allowedOrigins", "ftp://chat.example.com"),
        ("allowedOrigins", "https://chat.example.com/path"),
        ("allowedOrigins", ["https://chat.example.com", 3]),
        ("allowedOrigins", "chat.example.com"),
        ("allowMissingOrigin", "perhaps"),
        ("fanoutEngine", "curl"),
        ("fanoutShardSize", 0),
        ("fanoutShardSize", 100_001),
        ("fanoutWorkerMemoryMb", 64),
        ("fanoutWorkerConcurrency", 257),
        ("fanoutWorkerReservedConcurrency", -1),
    ],
)
def test_bad_values_of_the_new_keys_fail_with_the_key_named(key, value):
    with pytest.raises(ConfigError, match=re.escape(key)):
        config_with(**{key: value})


def test_defaults_give_the_documented_limits():
    config = config_with()
    assert config.reserved_concurrency == 100
    assert config.route_throttling == {
        route: RouteThrottle(burst=limits["burst"], rate=limits["rate"])
        for route, limits in DEFAULTS["routeThrottling"].items()
    }
    assert set(config.route_throttling) == set(THROTTLED_ROUTES)
    assert config.allowed_origins == ()
    assert config.origin_allow_list() == LOOPBACK_ORIGINS
    assert config.allow_missing_origin is True


def test_allowed_origins_from_the_command_line_add_to_loopback():
    config = config_with(allowedOrigins="https://chat.example.com, https://b.example.org")
    assert config.origin_allow_list() == (
        "https://chat.example.com",
        "https://b.example.org",
        *LOOPBACK_ORIGINS,
    )
    as_json = config_with(allowedOrigins='["https://chat.example.com"]')
    assert as_json.allowed_origins == ("https://chat.example.com",)


def test_any_origin_only_when_set_explicitly():
    assert "*" not in config_with().function_environment()["ALLOWED_ORIGINS"]
    assert config_with(allowedOrigins="*").function_environment()["ALLOWED_ORIGINS"] == "*"


def test_flags_and_numbers_arrive_as_strings_from_the_command_line():
    config = config_with(
        allowMissingOrigin="false", reservedConcurrency="0", nameRatePerSecond="0.5"
    )
    assert config.allow_missing_origin is False
    assert config.reserved_concurrency == 0
    assert config.function_environment()["NAME_RATE_PER_SECOND"] == "0.5"


def test_member_partitions_reach_the_function_as_a_number():
    assert config_with().function_environment()["MEMBER_PARTITIONS"] == "1"
    config = config_with(memberPartitions="4")
    assert config.member_partitions == 4
    required = {"TABLE_NAME": "table", "CALLBACK_URL": "https://example.com/production"}
    assert Settings.from_env({**required, **config.function_environment()}).member_partitions == 4


throttle = st.fixed_dictionaries(
    {},
    optional={
        "burst": st.integers(min_value=1, max_value=5000),
        "rate": st.integers(min_value=1, max_value=10000) | st.floats(min_value=1, max_value=1e4),
    },
)


@settings(max_examples=examples(60), deadline=None, database=None)
@given(st.dictionaries(st.sampled_from(THROTTLED_ROUTES), throttle))
def test_any_valid_route_throttling_is_read_route_by_route_over_the_defaults(raw):
    read = config_with(routeThrottling=json.dumps(raw)).route_throttling
    for route in THROTTLED_ROUTES:
        expected = {**DEFAULTS["routeThrottling"][route], **raw.get(route, {})}
        assert read[route] == RouteThrottle(burst=expected["burst"], rate=expected["rate"])


@settings(max_examples=examples(40), deadline=None, database=None)
@given(
    st.sampled_from(THROTTLED_ROUTES),
    st.sampled_from(["burst", "rate"]),
    st.integers(max_value=0) | st.integers(min_value=10001),
)
def test_any_out_of_range_route_throttle_names_the_route(route, field, value):
    with pytest.raises(ConfigError, match=re.escape(f"routeThrottling.{route}")):
        config_with(routeThrottling={route: {field: value}})


def configuration_table(path: Path, heading: str) -> dict[str, str]:
    """The rows of the tables under `heading` (to the next heading of its level or higher):
    key -> default cell (backticks off). The key is the first cell, the default the one
    headed "default"."""
    text = path.read_text(encoding="utf-8")
    level = heading.split(" ", 1)[0]
    section = text.split(heading + "\n", 1)[1]
    section = re.split(rf"\n#{{1,{len(level)}}} ", section, maxsplit=1)[0]
    table: dict[str, str] = {}
    column = 1
    for line in section.splitlines():
        cells = [cell.strip() for cell in line.strip().strip("|").split(" | ")]
        if line.startswith("| key"):
            column = cells.index("default")
        if not line.startswith("| `"):
            continue
        key = cells[0].strip("`")
        assert key not in table, f"{path.name} lists {key} twice"
        table[key] = cells[column].strip("`")
    return table


def reference_table() -> dict[str, str]:
    """docs/configuration.md's two tables of context keys (the stack's and the function's)."""
    page = ROOT / "docs" / "configuration.md"
    return {
        **configuration_table(page, "## The stack's keys"),
        **configuration_table(page, "## The chat function's keys"),
    }


def readme_table() -> dict[str, str]:
    return configuration_table(ROOT / "README.md", "### Configuration (CDK context)")


def test_the_configuration_reference_is_what_the_generator_writes():
    # bin/build-config-docs (make docs) writes it from settings.json and context_keys.json.
    assert (ROOT / "docs" / "configuration.md").read_text(encoding="utf-8") == render(), (
        "docs/configuration.md is out of date: run make docs"
    )


def test_the_reference_lists_exactly_the_context_keys():
    assert set(reference_table()) - set(CONTEXT_ONLY_KEYS) == set(DEFAULTS)
    assert set(INFRA_KEYS) | set(FUNCTION_SETTINGS_BY_KEY) == set(DEFAULTS) | set(CONTEXT_ONLY_KEYS)


def assert_documents_default(documented: str | None, key: str, where: str) -> None:
    assert documented is not None, f"{where} has no row for {key}"
    default = DEFAULTS[key]
    if default == "":
        # An empty default is "unset", or the value derived from other keys ("<key>/...").
        assert documented == "unset" or documented.startswith("<"), f"{where}: {key}"
    elif isinstance(default, str):
        assert documented == default
    else:
        assert json.loads(documented) == default, f"{where}: {key} = {documented}"


@pytest.mark.parametrize("key", sorted(DEFAULTS))
def test_the_reference_gives_each_key_its_default(key):
    assert_documents_default(reference_table().get(key), key, "docs/configuration.md")


def test_the_readmes_short_table_gives_the_defaults_and_links_the_reference():
    table = readme_table()
    assert 5 <= len(table) <= 20, "README keeps a short table of the most used keys"
    for key in table:
        assert key in DEFAULTS, f"README lists {key}, which is no context key"
        assert_documents_default(table[key], key, "README")
    section = (
        (ROOT / "README.md")
        .read_text(encoding="utf-8")
        .split("### Configuration (CDK context)", 1)[1]
    )
    assert "docs/configuration.md" in section.split("\n#", 1)[0]


def test_the_function_defaults_agree_with_the_stack_defaults():
    # What the function runs with when the stack sets nothing, what the stack sets by
    # default, and the dataclass defaults: all the same settings.
    required = {"TABLE_NAME": "table", "CALLBACK_URL": "https://example.com/production"}
    deployed = Settings.from_env({**required, **config_with().function_environment()})
    assert Settings.from_env(required) == deployed
    assert Settings(table_name="table", callback_url=required["CALLBACK_URL"]) == deployed


def test_the_function_reads_every_variable_the_stack_sets():
    assert set(config_with().function_environment()) <= set(function_settings.SPECS)
    assert set(config_with().worker_environment()) <= set(function_settings.SPECS)


def setting_values(setting: FunctionSetting) -> tuple[Any, Any, Any, Any]:
    """(below the range, its lowest, its highest, above the range) for a numeric setting."""
    assert setting.low is not None and setting.high is not None
    if setting.kind == "int":
        return setting.low - 1, int(setting.low), int(setting.high), setting.high + 1
    return setting.low / 2, setting.low, setting.high, setting.high * 2


NUMERIC = [s for s in FUNCTION_SETTINGS if s.kind in ("int", "float")]


@pytest.mark.parametrize("setting", NUMERIC, ids=[s.env for s in NUMERIC])
def test_the_function_takes_exactly_the_range_settings_json_gives(setting):
    required = {"TABLE_NAME": "table", "CALLBACK_URL": "https://example.com/production"}
    below, low, high, above = setting_values(setting)
    for value in (low, high):
        Settings.from_env({**required, setting.env: str(value)})
    for value in (below, above):
        with pytest.raises(ValueError, match=re.escape(setting.env)):
            Settings.from_env({**required, setting.env: str(value)})


KEYED = [s for s in NUMERIC if s.key]


@pytest.mark.parametrize("setting", KEYED, ids=[s.key or "" for s in KEYED])
def test_the_stack_takes_exactly_the_range_settings_json_gives(setting):
    below, low, high, above = setting_values(setting)
    # A review hook's or an event bus's setting reaches the function only with one.
    enabling = {key: INTEGRATION_EXAMPLES[key] for key in setting.only_with[:1]}
    for value in (below, above):
        with pytest.raises(ConfigError, match=rf"{re.escape(setting.key)}=\S+ must be between"):
            config_with(**{setting.key: value}, **enabling)
    for value in (low, high):
        # A bound may still be refused by the fan-out's clock, never by the range.
        try:
            config = config_with(**{setting.key: value}, **enabling)
        except ConfigError as refused:
            assert "must be between" not in str(refused)
        else:
            variable = config.function_environment()[setting.env]
            assert float(variable) == value


def test_every_copy_of_a_default_or_range_is_the_one_in_settings_json():
    # GIVEN settings.json, read by the stack, the function, the load test and the docs
    with (ROOT / "lambda_src" / "chat" / "settings.json").open(encoding="utf-8") as file:
        written = {entry["env"]: entry for entry in json.load(file)["settings"]}
    for env, entry in written.items():
        spec = function_settings.SPECS[env]
        setting = infra_function_settings.BY_ENV[env]
        # THEN the function and the stack hold the same default and range
        assert (spec.default, spec.low, spec.high) == (
            entry["default"],
            entry.get("min"),
            entry.get("max"),
        )
        assert (setting.default, setting.low, setting.high) == (spec.default, spec.low, spec.high)
        if setting.key:
            assert DEFAULTS[setting.key] == entry["default"]
            if "min" in entry:
                assert infra_config.RANGES[setting.key] == (entry["min"], entry["max"])
    # AND the load test paces itself by the same defaults
    limits = load.Limits()
    for name in ("message_burst", "message_rate_per_second", "name_burst"):
        assert getattr(limits, name) == written[name.upper()]["default"]
    assert limits.name_rate_per_second == written["NAME_RATE_PER_SECOND"]["default"]
    assert limits.max_room_size == written["MAX_ROOM_SIZE"]["default"]
    # AND so does bin/conformance, and it looks in every member partition there can be
    options = conformance.Options(url="wss://example.com/production")
    assert options.message_burst == written["MESSAGE_BURST"]["default"]
    assert options.message_rate == written["MESSAGE_RATE_PER_SECOND"]["default"]
    assert written["MEMBER_PARTITIONS"]["max"] == conformance.MAX_MEMBER_PARTITIONS
    # AND protocol.md quotes the per-connection bucket's defaults
    protocol = " ".join((ROOT / "docs" / "protocol.md").read_text(encoding="utf-8").split())
    quoted = re.search(r"a token bucket of (\d+) frames refilled at (\d+) per second", protocol)
    assert quoted is not None, "protocol.md no longer quotes the message bucket"
    assert int(quoted.group(1)) == written["MESSAGE_BURST"]["default"]
    assert float(quoted.group(2)) == written["MESSAGE_RATE_PER_SECOND"]["default"]


def test_the_stacks_derived_variables_fit_the_functions_ranges():
    worker_timeout = function_settings.SPECS["FANOUT_WORKER_TIMEOUT_SECONDS"]
    lowest, highest = infra_config.RANGES["lambdaTimeoutSeconds"]
    assert worker_timeout.default == config_with().fanout_worker_timeout_seconds
    assert worker_timeout.low == infra_config.MIN_WORKER_TIMEOUT_SECONDS
    assert worker_timeout.high == highest - infra_config.WORKER_TIMEOUT_HEADROOM_SECONDS
    # The worker reads fanoutWorkerConcurrency as its FANOUT_CONCURRENCY.
    concurrency = function_settings.SPECS["FANOUT_CONCURRENCY"]
    low, high = infra_config.RANGES["fanoutWorkerConcurrency"]
    assert concurrency.low is not None and concurrency.high is not None
    assert concurrency.low <= low and high <= concurrency.high
    assert (
        infra_config.RANGES["fanoutPostsPerSecond"][1] == infra_config.MAX_FANOUT_POSTS_PER_SECOND
    )
    assert lowest >= worker_timeout.low


def test_metric_names_and_loopback_origins_are_read_from_settings_json():
    with (ROOT / "lambda_src" / "chat" / "settings.json").open(encoding="utf-8") as file:
        written = json.load(file)
    names = tuple(m["name"] for m in written["metrics"]["names"].values())
    assert telemetry.METRIC_NAMES == monitoring.METRIC_NAMES == names
    assert telemetry.NAMESPACE == powertools.METRICS_NAMESPACE == written["metrics"]["namespace"]
    assert telemetry.SERVICE == powertools.SERVICE == written["metrics"]["service"]
    origins = tuple(written["loopbackOrigins"])
    assert LOOPBACK_ORIGINS == function_settings.LOOPBACK_ORIGINS == origins


# --- the fan-out's clock: what synth refuses -------------------------------------------


def test_the_stacks_copies_of_the_functions_fanout_figures_agree():
    assert infra_config.DEADLINE_MARGIN_SECONDS == deadline.DEFAULT_MARGIN_SECONDS
    assert infra_config.FANOUT_BURST_SECONDS == sharding.BURST_SECONDS
    assert infra_config.POSTS_PER_SECOND_PER_INVOCATION == sharding.POSTS_PER_SECOND_PER_INVOCATION
    assert infra_config.WORKER_READ_MARGIN_SECONDS == wiring.WORKER_READ_MARGIN_S


@pytest.mark.parametrize("timeout", range(6, 30))
def test_the_worker_times_out_before_the_chat_function_stops_waiting_for_it(timeout):
    config = config_with(lambdaTimeoutSeconds=timeout)
    worker = config.fanout_worker_timeout_seconds
    assert worker == timeout - 3
    required = {"TABLE_NAME": "table", "CALLBACK_URL": "https://example.com/production"}
    settings_ = Settings.from_env({**required, **config.function_environment()})
    assert settings_.fanout_worker_timeout_seconds == worker
    # The Invoke read timeout ends before the chat function's deadline (its timeout minus
    # the deadline's margin): a worker that runs into its own timeout is still answered.
    read = wiring.worker_read_timeout(settings_)
    assert worker < read < timeout - deadline.DEFAULT_MARGIN_SECONDS


def test_a_sharded_stack_needs_a_chat_timeout_that_outlasts_the_workers():
    with pytest.raises(ConfigError, match="lambdaTimeoutSeconds to at least 6") as refused:
        config_with(lambdaTimeoutSeconds=5)
    assert "fanoutShardSize" in str(refused.value)
    assert config_with(lambdaTimeoutSeconds=6).fanout_worker_timeout_seconds == 3
    # Unsharded (no room is bigger than a shard), the worker is never invoked.
    unsharded = config_with(lambdaTimeoutSeconds=3, fanoutShardSize=1000)
    assert not unsharded.sharded
    assert unsharded.fanout_worker_timeout_seconds == 3


def test_the_defaults_and_the_stages_fit_the_clock():
    for config in (config_with(), config_with(stage="prod"), config_with(stage="dev")):
        timing = config.fanout_timing()
        assert timing.sharded
        assert timing.last_shard_starts == 0.0  # 1,000 posts fit the burst of 2,000
        assert timing.last_shard_needs + 1 <= config.fanout_worker_timeout_seconds


def test_a_full_room_that_cannot_be_posted_in_time_fails_synth_with_the_numbers():
    with pytest.raises(ConfigError) as refused:
        config_with(maxRoomSize=100_000)
    message = str(refused.value)
    for named in ("maxRoomSize=100000", "fanoutPostsPerSecond=5000", "lambdaTimeoutSeconds=20"):
        assert named in message
    # (100,000 - 2,000) / 5,000 = 19.6 s, + 250 / 3,500 s, + 1 s: 20.67 s, over 17 s.
    assert "19.60 s" in message and "20.67 s" in message and "17 s" in message
    assert "lambdaTimeoutSeconds to at least 24" in message


def test_the_app_refuses_to_build_with_a_room_that_cannot_be_posted_in_time():
    # What `cdk synth -c maxRoomSize=100000` runs (app.py): it stops before any stack exists.
    with pytest.raises(ConfigError, match="lambdaTimeoutSeconds to at least 24"):
        build_app({"maxRoomSize": 100_000})


ADVICE = re.compile(r"(raise|lower) (\w+) to at (?:least|most) (\d+)")


@pytest.mark.parametrize(
    "context",
    [
        {"maxRoomSize": 100_000},
        {"maxRoomSize": 100_000, "lambdaTimeoutSeconds": 23},
        {"maxRoomSize": 60_000, "fanoutPostsPerSecond": 2000, "lambdaTimeoutSeconds": 29},
        {"maxRoomSize": 20_000, "fanoutShardSize": 20_000},
        {"maxRoomSize": 50_000, "fanoutShardSize": 20_000, "lambdaTimeoutSeconds": 29},
        {"maxRoomSize": 30_000, "fanoutWorkerMemoryMb": 128, "fanoutShardSize": 3000},
    ],
)
def test_each_change_synth_suggests_makes_the_settings_fit(context):
    with pytest.raises(ConfigError) as refused:
        config_with(**context)
    advice = ADVICE.findall(str(refused.value))
    assert advice, str(refused.value)
    for _, key, value in advice:
        config_with(**{**context, key: int(value)})  # does not raise


@pytest.mark.parametrize(
    ("key", "value", "fits"),
    [("maxRoomSize", 81_642, True), ("maxRoomSize", 81_643, False)],
)
def test_the_largest_room_synth_allows_is_exact(key, value, fits):
    # Timeout 20 s: posts may take 17 - 1 - 250 / 3,500 s, so the pace allows
    # 2,000 + 15.93 x 5,000.
    if fits:
        config_with(**{key: value})
    else:
        with pytest.raises(ConfigError, match=key):
            config_with(**{key: value})


def test_an_unsharded_room_is_posted_by_the_chat_function_at_its_share_of_a_vcpu():
    with pytest.raises(ConfigError, match="lambdaMemoryMb") as refused:
        config_with(maxRoomSize=20_000, fanoutShardSize=20_000)
    assert "not sharded" in str(refused.value)
    fitted = config_with(maxRoomSize=20_000, fanoutShardSize=20_000, lambdaMemoryMb=1769)
    assert fitted.fanout_timing().own_shard_needs == pytest.approx(20_000 / 3500)


def test_a_room_small_enough_for_full_member_lists_costs_two_posts_a_member():
    small = config_with(maxRoomSize=200, fanoutShardSize=100).fanout_timing()
    assert (small.posts_per_recipient, small.room_posts) == (2, 400)
    assert config_with().fanout_timing().posts_per_recipient == 1


@settings(max_examples=examples(40), deadline=None, database=None)
@given(
    room=st.integers(min_value=2, max_value=100_000),
    shard=st.integers(min_value=1, max_value=5000),
    rate=st.integers(min_value=100, max_value=10_000),
)
def test_synth_and_the_function_agree_on_when_the_last_shard_starts(room, shard, rate):
    try:
        config = config_with(
            maxRoomSize=room,
            fanoutShardSize=shard,
            fanoutPostsPerSecond=rate,
            lambdaTimeoutSeconds=29,
            lambdaMemoryMb=1769,
        )
    except ConfigError:
        return
    timing = config.fanout_timing()
    notifier = sharding.ShardedNotifier(
        lambda deliveries: None,  # type: ignore[arg-type]
        lambda request: {},
        shard_size=shard,
        posts_per_second=rate,
    )
    if timing.sharded:
        assert timing.last_shard_starts == pytest.approx(notifier.start_offset(timing.room_posts))
    budget = config.fanout_worker_timeout_seconds - deadline.DEFAULT_MARGIN_SECONDS
    assert timing.last_shard_starts + timing.last_shard_needs <= budget
