"""Target discovery (Prometheus file_sd and HTTP SD) and sharding by URL."""

from __future__ import annotations

import asyncio
import json
import os
import pathlib
import subprocess
import sys
from collections.abc import Iterator

import aiohttp
import pytest
from misbehaving import FakeTargets, fake_targets

from grprof.collect.discovery import DiscoveryError, FileSD, HttpSD, fetch_http_sd, read_file_sd
from grprof.collect.model import Auth, Target
from grprof.collect.shard import owns, parse_shard, shard_of

GROUPS_YAML = """\
# the example from docs/collection.md
- targets: ["10.0.0.1:6060", "10.0.0.2:6060"]
  labels:
    job: checkout
    env: prod
    port: 6060            # an unquoted number: read as the string "6060"
- targets: ["payments.internal:8443"]
  labels:
    __scheme__: https
    __path_prefix__: /admin
    instance: payments-1
    __meta_ignored: x
"""


def write(path: pathlib.Path, text: str) -> str:
    path.write_text(text)
    return str(path)


# -- file_sd parsing ----------------------------------------------------------------------


def test_file_sd_yaml_and_json_give_the_same_targets(tmp_path: pathlib.Path) -> None:
    import yaml

    from_yaml = read_file_sd(write(tmp_path / "t.yaml", GROUPS_YAML))
    from_json = read_file_sd(write(tmp_path / "t.json", json.dumps(yaml.safe_load(GROUPS_YAML))))
    assert [t.name for t in from_yaml] == ["checkout/10.0.0.1:6060", "checkout/10.0.0.2:6060", "payments-1"]
    first, _, payments = from_yaml
    assert first.url == "http://10.0.0.1:6060"
    assert first.labels == {"job": "checkout", "env": "prod", "port": "6060"}
    assert first.source == f"file_sd:{tmp_path / 't.yaml'}"
    assert payments.url == "https://payments.internal:8443/admin"
    assert payments.labels == {"instance": "payments-1"}  # `__` labels are not target labels
    assert [(t.name, t.url, dict(t.labels)) for t in from_json] == [
        (t.name, t.url, dict(t.labels)) for t in from_yaml
    ]


def test_file_sd_names_without_job_or_instance_and_auth(tmp_path: pathlib.Path) -> None:
    auth = Auth(bearer_token_file="/run/token")
    path = write(tmp_path / "t.json", '[{"targets": ["localhost:6060", "[::1]:7070", "svc"]}]')
    targets = read_file_sd(path, target_auth=auth)
    assert [(t.name, t.url) for t in targets] == [
        ("localhost:6060", "http://localhost:6060"),
        ("[::1]:7070", "http://[::1]:7070"),
        ("svc", "http://svc"),
    ]
    assert all(t.auth == auth and t.labels == {} for t in targets)
    assert read_file_sd(write(tmp_path / "empty.yaml", "")) == []
    assert read_file_sd(write(tmp_path / "none.json", "[]")) == []


@pytest.mark.parametrize(
    ("name", "text", "message"),
    [
        ("a.json", '{"targets": []}', "a.json:1: (top level): must be a list, got a mapping"),
        (
            "a.json",
            '[{"targets": "h:1"}]',
            'a.json:1: 0.targets: must be a list, got "h:1"',
        ),
        ("a.json", '[{"targets": ["h:1"]}, {"labels": {}}]', "a.json:1: 1.targets: missing"),
        (
            "a.json",
            '[{"targets": ["http://h:1"]}]',
            "a.json:1: 0.targets.0: 'http://h:1' is not host:port (put",
        ),
        (
            "a.json",
            '[{"targets": ["h:1", "h:99999"]}]',
            "a.json:1: 0.targets.1: 'h:99999' is not host:port",
        ),
        ("a.json", '[{"targets": ["h:1", 7]}]', "a.json:1: 0.targets.1: Input should be a valid string"),
        (
            "a.json",
            '[{"targets": [], "lables": {}}]',
            'a.json:1: 0.lables: unknown key (did you mean "labels"?)',
        ),
        (
            "a.json",
            '[{"targets": [], "labels": {"a-b": "x"}}]',
            "a.json:1: 0.labels.a-b: label name 'a-b' is not a valid Prometheus",
        ),
        (
            "a.json",
            '[{"targets": [], "labels": {"a": ["x"]}}]',
            "a.json:1: 0.labels.a: must be a string, got a list",
        ),
        (
            "a.json",
            '[{"targets": ["h:1"], "labels": {"__scheme__": "ftp"}}]',
            "a.json:1: 0.labels.__scheme__: must be http or https",
        ),
        (
            "a.json",
            '[{"targets": ["h:1", "h:1"]}]',
            "a.json:1: 0.targets.1: target name 'h:1' is already used by 0.targets.0",
        ),
        (
            "a.json",
            '[{"targets": ["h:1"]},\n {"targets": ["h:1"]}]',
            "a.json:2: 1.targets.0: target name 'h:1' is already used",
        ),
        ("a.json", '[{"targets": ["h:1"]}', "a.json:1: not valid JSON: "),
        ("a.yaml", "- targets: [h:1\n- x", "a.yaml:3: not valid YAML: "),
        (
            "a.yaml",
            "- targets: []\n  labels: {flag: yes}",
            "a.yaml:2: 0.labels.flag: must be a string, got bool (quote it)",
        ),
    ],
)
def test_file_sd_errors_name_the_file_and_entry(
    tmp_path: pathlib.Path, name: str, text: str, message: str
) -> None:
    path = write(tmp_path / name, text)
    with pytest.raises(DiscoveryError) as err:
        read_file_sd(path)
    assert message in str(err.value)
    assert str(err.value).startswith(path) and "\n" not in str(err.value)


def test_file_sd_missing_file(tmp_path: pathlib.Path) -> None:
    with pytest.raises(DiscoveryError, match=r"nope\.json: cannot read"):
        read_file_sd(str(tmp_path / "nope.json"))


# -- FileSD: re-reading on change ---------------------------------------------------------


def group(*addresses: str, **labels: str) -> str:
    return json.dumps([{"targets": list(addresses), "labels": labels}])


def names(targets: list[Target]) -> list[str]:
    return [t.name for t in targets]


def test_file_sd_rereads_changes_keeps_the_last_good_list_and_follows_globs(
    tmp_path: pathlib.Path, caplog: pytest.LogCaptureFixture
) -> None:
    a = tmp_path / "a.json"
    a.write_text(group("h1:1", job="x"))
    sd = FileSD([str(tmp_path / "*.json")], refresh=0.05)
    assert sd.poll() and names(sd.targets) == ["x/h1:1"]
    assert not sd.poll()  # unchanged: not re-read
    a.write_text(group("h1:1", "h2:2", job="x"))
    assert sd.poll() and names(sd.targets) == ["x/h1:1", "x/h2:2"]
    # A broken write keeps the previous targets and says why, once.
    a.write_text('[{"targets": ["h1:1", ')
    with caplog.at_level("WARNING", "grprof.collect.discovery"):
        assert not sd.poll()
        assert not sd.poll()
    assert names(sd.targets) == ["x/h1:1", "x/h2:2"]
    assert len(sd.errors) == 1 and sd.errors[0].startswith(f"{a}:1: not valid JSON")
    assert caplog.text.count("not valid JSON") == 1 and "keeping its previous targets" in caplog.text
    # A new file matching the glob joins; fixing the broken one clears the error.
    (tmp_path / "b.json").write_text(group("h3:3"))
    a.write_text(group("h1:1"))
    assert sd.poll() and names(sd.targets) == ["h1:1", "h3:3"] and sd.errors == []
    # Same-size, same-second rewrites are still seen (mtime in ns, inode on rename).
    tmp = tmp_path / "b.tmp"
    tmp.write_text(group("h4:4"))
    os.replace(tmp, tmp_path / "b.json")
    assert sd.poll() and names(sd.targets) == ["h1:1", "h4:4"]
    (tmp_path / "b.json").unlink()
    assert sd.poll() and names(sd.targets) == ["h1:1"]


def test_file_sd_duplicates_across_files_and_missing_paths(tmp_path: pathlib.Path) -> None:
    (tmp_path / "a.yaml").write_text("- targets: ['h:1']\n")
    (tmp_path / "b.yaml").write_text("- targets: ['h:1', 'h:2']\n")
    missing = str(tmp_path / "gone.yaml")
    sd = FileSD([str(tmp_path / "*.yaml"), missing])
    sd.poll()
    assert names(sd.targets) == ["h:1", "h:2"]
    assert sd.targets[0].source == f"file_sd:{tmp_path / 'a.yaml'}"
    assert any("duplicate target names" in e and "b.yaml" in e for e in sd.errors)
    assert f"{missing}: no such file" in sd.errors


def test_file_sd_updates_yields_on_change(tmp_path: pathlib.Path) -> None:
    path = tmp_path / "t.json"
    path.write_text(group("h:1"))

    async def main() -> list[list[str]]:
        seen: list[list[str]] = []
        updates = FileSD([str(path)], refresh=0.05).updates()
        seen.append(names(await anext(updates)))
        await asyncio.sleep(0.1)
        path.write_text(group("h:1", "h:2"))
        seen.append(names(await asyncio.wait_for(anext(updates), 2)))
        await updates.aclose()
        return seen

    assert asyncio.run(main()) == [["h:1"], ["h:1", "h:2"]]


# -- HTTP SD ------------------------------------------------------------------------------


@pytest.fixture
def ft() -> Iterator[FakeTargets]:
    with fake_targets() as targets:
        yield targets


def test_http_sd_fetches_prometheus_groups(ft: FakeTargets) -> None:
    ft.sd_document = [{"targets": ["127.0.0.1:6060"], "labels": {"job": "api", "__meta_x": "y"}}]

    async def main() -> list[Target]:
        async with aiohttp.ClientSession() as session:
            return await fetch_http_sd(session, f"{ft.base}/sd", 5.0)

    (target,) = asyncio.run(main())
    assert (target.name, target.url, dict(target.labels)) == (
        "api/127.0.0.1:6060",
        "http://127.0.0.1:6060",
        {"job": "api"},
    )
    assert target.source == f"http_sd:{ft.base}/sd"


def test_http_sd_keeps_the_previous_list_on_failure(
    ft: FakeTargets, caplog: pytest.LogCaptureFixture
) -> None:
    url = f"{ft.base}/sd"
    sd = HttpSD(url, refresh=0.05, timeout=2.0)

    async def main() -> list[tuple[bool, list[str], list[str]]]:
        steps = []
        async with aiohttp.ClientSession() as session:
            for doc, status in [
                ([{"targets": ["h:1"]}], 200),
                ([{"targets": ["h:1"]}], 200),
                ([], 500),
                ({"not": "a list"}, 200),
                ([{"targets": ["h:2"]}], 200),
            ]:
                ft.sd_document, ft.sd_status = doc, status
                changed = await sd.poll(session)
                steps.append((changed, names(sd.targets), sd.errors))
        return steps

    with caplog.at_level("WARNING", "grprof.collect.discovery"):
        steps = asyncio.run(main())
    assert steps[0] == (True, ["h:1"], [])
    assert steps[1] == (False, ["h:1"], [])
    assert steps[2] == (False, ["h:1"], [f"{url}: HTTP 500"])
    assert steps[3] == (False, ["h:1"], [f"{url}: (top level): must be a list, got a mapping"])
    assert steps[4] == (True, ["h:2"], [])
    assert "keeping the previous targets" in caplog.text


def test_http_sd_unreachable_and_not_json(ft: FakeTargets) -> None:
    async def main() -> list[str]:
        errors = []
        async with aiohttp.ClientSession() as session:
            for url in (
                f"{ft.dead_url}/sd",
                f"{ft.url('garbage')}/debug/pprof/goroutine",
                f"{ft.silent_url}/sd",
            ):
                with pytest.raises(DiscoveryError) as err:
                    await fetch_http_sd(session, url, 0.5)
                errors.append(str(err.value))
        return errors

    dead, garbage, silent = asyncio.run(main())
    assert dead.startswith(f"{ft.dead_url}/sd: ") and "Cannot connect" in dead
    assert "the response is not JSON" in garbage
    assert silent == f"{ft.silent_url}/sd: timed out after 0.5s"


# -- sharding -----------------------------------------------------------------------------


def test_parse_shard() -> None:
    assert parse_shard("0/2") == (0, 2)
    assert parse_shard(" 3 / 4 ") == (3, 4)
    for bad, why in [("2/2", "0..1"), ("1", "expected I/N"), ("0/0", "at least 1"), ("-1/2", "expected I/N")]:
        with pytest.raises(ValueError, match=why):
            parse_shard(bad)


def test_every_target_has_exactly_one_owner() -> None:
    urls = [f"http://10.0.{i // 250}.{i % 250}:6060" for i in range(1000)]
    for n in (1, 2, 3, 7):
        owners = [[i for i in range(n) if owns(u, (i, n))] for u in urls]
        assert all(len(o) == 1 for o in owners)
        per_shard = [sum(1 for o in owners if o == [i]) for i in range(n)]
        assert min(per_shard) > 1000 / n * 0.8  # spread evenly enough
    assert all(owns(u, None) for u in urls)


def test_shard_hash_is_prometheus_hashmod_and_stable_across_processes() -> None:
    # Pinned values, computed by Go as Prometheus' hashmod does (md5.Sum, then
    # binary.BigEndian.Uint64(sum[8:]) % 1000); a change here would move targets between
    # replicas running different grprof versions.
    urls = ["http://127.0.0.1:6060", "https://payments.internal:8443/admin", "http://10.0.0.1:6060"]
    here = [shard_of(u, 1000) for u in urls]
    assert here == [133, 543, 298]
    code = f"from grprof.collect.shard import shard_of; print([shard_of(u, 1000) for u in {urls!r}])"
    for seed in ("1", "2"):
        out = subprocess.run(
            [sys.executable, "-c", code],
            env={**os.environ, "PYTHONHASHSEED": seed},
            capture_output=True,
            text=True,
        )
        assert out.stdout.strip() == str(here), out.stderr
