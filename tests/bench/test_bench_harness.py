"""A light run of the benchmark harness (`python -m bench --quick`): every part runs and
writes its results, its report and its plots. No timing is asserted: the figures live in
bench/results/latest.json and docs/performance.md, written by `make bench`."""

from __future__ import annotations

import json
import shutil
import time
from pathlib import Path

import pytest

from bench import local_aws, report, room_bench, scenarios
from chat.store import DynamoChatStore, member_shard
from tests.support.aws import TABLE
from tests.support.consistency import member_shard_of, scan, table_problems


@pytest.fixture
def cdk_out_dir(chat_template_path, tmp_path, monkeypatch):
    """A cdk.out holding the session's synthesized template under a staged stack name, the
    manifest's only stack, beside an earlier synth's `ChatStack` (without a table)."""
    out = tmp_path / "cdk.out"
    out.mkdir()
    for entry in chat_template_path.parent.iterdir():  # the assets the template points to
        if entry.name.startswith("asset."):
            (out / entry.name).symlink_to(entry)
    staged = out / "Chat-bench.template.json"
    shutil.copy(chat_template_path, staged)
    manifest = {
        "artifacts": {
            "Chat-bench": {
                "type": "aws:cloudformation:stack",
                "properties": {"templateFile": staged.name},
            }
        }
    }
    (out / "manifest.json").write_text(json.dumps(manifest))
    stale = {"Resources": {"Api": {"Type": "AWS::ApiGatewayV2::Api", "Properties": {}}}}
    (out / "ChatStack.template.json").write_text(json.dumps(stale))
    monkeypatch.setattr(local_aws, "CDK_OUT", out)
    return out


def test_the_staged_template_is_found_not_an_earlier_synths_chat_stack(cdk_out_dir):
    assert local_aws.chat_template().name == "Chat-bench.template.json"


def test_a_quick_run_writes_results_report_and_plots(cdk_out_dir, tmp_path):
    from bench.__main__ import main  # noqa: PLC0415

    results_path = tmp_path / "results" / "latest.json"
    markdown = tmp_path / "docs" / "performance.md"
    plots = tmp_path / "docs" / "performance"
    assert (
        main(
            [
                "--quick",
                "--json",
                str(results_path),
                "--markdown",
                str(markdown),
                "--plots",
                str(plots),
            ]
        )
        == 0
    )

    results = json.loads(results_path.read_text())
    assert results["machine"]["cores"] >= 1
    assert results["transport"]["tls"] is True
    assert results["transport"]["version"].startswith("TLS")
    assert results["transport"]["session_read_ms"] > 0
    k = results["chosen_k"]
    keys = {c["key"] for c in results["fanout"]["candidates"]}
    assert {
        f"ours-k{k}",
        "urllib3",
        "aiohttp",
        f"boto3-k{k}",
        f"boto3-k{results['today_k']}",
    } <= keys
    assert {f"ours-k{k}-http", f"ours-k{k}-no-resume"} <= keys
    for candidate in results["fanout"]["candidates"]:
        assert candidate["cpu_ms_per_recipient"]["median"] > 0
        assert candidate["max_in_flight"]["max"] <= candidate["k"]
    goals = results["derived"]["goals"]
    assert {"posts_per_second", "cpu_ms_per_recipient", "cpu_ratio_vs_boto3"} <= set(goals)
    assert goals["cpu_ms_per_recipient"]["goal"] == 0.25
    assert goals[f"cpu_ratio_vs_boto3-k{k}"] > 0
    assert set(results["derived"]["per_post_cpu_ms"]) == {"tls", "resumption"}
    # A cold worker's connections: every variant opened connections; only with
    # resumption on, after a first answer, did they resume (counted by the server).
    for handshakes in results["fanout"]["handshakes"].values():
        assert handshakes["first_off"]["resumed"]["max"] == 0
        assert handshakes["cold_off"]["resumed"]["max"] == 0
        assert handshakes["first_on"]["resumed"]["min"] >= 1
        assert handshakes["first_on"]["connections"]["min"] >= 1
        assert handshakes["warm_off"]["connections"]["max"] == 0
    assert set(results["derived"]["resumption"]["by_k"]) == {"4", "8"}
    profile = results["fanout"]["profile"]
    assert profile["stages"]["signing (FanoutEngine._signed_headers: AWSRequest, SigV4Auth)"] > 0
    assert profile["by_own_time"]
    assert set(results["fanout"]["by_size"]) == {"ours", "boto3", "sequential"}
    assert results["fanout"]["huge"]["n"] > 0
    sizes = results["rooms"]["sizes"]
    assert sizes and all(s["actions"]["sendPublic"]["rru"]["median"] >= 1 for s in sizes.values())
    assert results["cold_start"]["assets"]["lambda_src_zip_bytes"] > 0
    assert set(results["sandbox"]) == {"2"}
    sizes = results["fanout"]["memory_sizes"]
    if "unavailable" not in sizes:  # cgroups need root (CI runs as root)
        assert {r["memory_mb"] for r in sizes["rows"]} == {256, 1769}
        assert all(r["seconds"]["median"] > 0 for r in sizes["rows"])
    assert (set(results["rooms_v2"]["sizes"]), results["rooms_v2"]["rooms"]) == ({"3", "6"}, [1, 2])
    (partitioned,) = results["rooms_partitioned"]["sizes"].values()
    assert len(partitioned["room_read"]["strong"]["rru_per_partition"]) == 4
    (sharded,) = results["fanout"]["sharding"].values()
    assert sharded["workers"] == 3  # 40 recipients in shards of 10: this one and three
    assert 0 < sharded["max_request_bytes"] < 6 * 1024 * 1024

    text = markdown.read_text()
    for heading in (
        "## Candidates",
        "## A cold worker's connections: TLS handshakes and session resumption",
        "## Where a post's CPU goes",
        "## Broadcast time against room size",
        "## Frame bytes against room size",
        "## DynamoDB units per action",
        "## DynamoDB units per rooms action",
        "## Can room reads be eventually consistent?",
        "## Cold start",
        "## The whole chat through the sandbox",
        "## How the chat uses the engine",
        "## Beyond one invocation",
    ):
        assert heading in text
    for png in (
        "broadcast_time.png",
        "cpu_per_recipient.png",
        "handshakes.png",
        "frame_bytes.png",
        "dynamodb_units.png",
        "rooms_units.png",
        "sandbox_latency.png",
    ):
        assert (plots / png).read_bytes().startswith(b"\x89PNG")
        assert f"performance/{png}" in text


def test_item_sizes_follow_dynamodbs_rules():
    item = {"pk": {"S": "ROOM#lobby"}, "n": {"N": "12345"}, "l": {"L": [{"S": "ab"}]}}
    # names 2 + 1 + 1; "ROOM#lobby" 10; 12345 -> 3 + 1; list 3 + (2 + 1)
    assert room_bench.item_size(item) == 4 + 10 + 4 + 6
    assert room_bench.read_units(4096, consistent=True) == 1
    assert room_bench.read_units(4097, consistent=False) == 1
    assert room_bench.write_units(1025) == 2


def test_the_memory_model_is_the_larger_of_network_and_cpu():
    model = report.memory_model(0.0002, 100, 0.02)
    row = next(r for r in model["rows"] if r["n"] == 100_000)
    assert row["1769"]["seconds"] == pytest.approx(20.0)  # CPU-bound: 100,000 x 0.2 ms
    assert row["256"]["seconds"] == pytest.approx(20.0 * 1769 / 256)
    small = next(r for r in model["rows"] if r["n"] == 100)
    assert small["1769"]["seconds"] == pytest.approx(0.02)  # one round of 100


def test_name_race_scenario_reports_exactly_one_winner(chat_template_path, monkeypatch):
    monkeypatch.setattr(local_aws, "CDK_OUT", chat_template_path.parent)
    section = scenarios.name_race(quick=True)
    assert "| 50 | 1 |" in section


@pytest.mark.parametrize("partitions", [1, 4])
def test_a_built_room_is_where_the_store_reads_and_removes_it(db, partitions):
    expires = int(time.time()) + 10_800
    ids = room_bench.build_room(db, TABLE, 0, 40, expires, member_partitions=partitions)
    items = scan(db, TABLE)
    assert table_problems(items) == []
    shards = {i["sk"]["S"][7:]: s for i in items if (s := member_shard_of(i)) is not None}
    assert shards == {cid: member_shard(cid, partitions) for cid in ids}
    store = DynamoChatStore(db, TABLE, member_partitions=partitions)
    assert [m.connection_id for m in store.list_members()] == ids
    assert store.remove_connection(ids[-1]) is not None
    assert table_problems(scan(db, TABLE)) == []


def test_the_standin_serves_https_that_only_its_own_ca_verifies():
    import ssl  # noqa: PLC0415
    import urllib.request  # noqa: PLC0415
    from urllib.error import HTTPError, URLError  # noqa: PLC0415

    from bench.standin import StandinProcess  # noqa: PLC0415

    with StandinProcess(tls=True) as standin:
        assert standin.url.startswith("https://127.0.0.1:")
        assert standin.ca_path is not None
        trusted = ssl.create_default_context(cafile=standin.ca_path)
        with pytest.raises(HTTPError) as answer:  # GET of an unknown id: the stand-in's 410
            standin.gone(["x"])
            urllib.request.urlopen(f"{standin.url}/@connections/x", context=trusted)
        assert answer.value.code == 410
        with pytest.raises(URLError, match="CERTIFICATE_VERIFY_FAILED"):
            urllib.request.urlopen(
                f"{standin.url}/@connections/x", context=ssl.create_default_context()
            )
        assert standin.stats()["connections"] >= 1
        ca_path = standin.ca_path
    assert not Path(ca_path).exists()  # removed with the stand-in
