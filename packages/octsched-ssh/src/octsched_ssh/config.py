"""The cluster file: which hosts, how to reach them, how many jobs each takes.

TOML::

    [defaults]              # every key here is also allowed per host
    user = "alice"
    identity_file = "~/.ssh/id_ed25519"
    python = "~/oct/.venv/bin/python"
    workdir = "~/oct"
    jobs_per_gpu = 1

    [[hosts]]
    name = "gpu1"           # how oct names the host (slots, messages)
    address = "gpu1.lab"    # or an alias from ~/.ssh/config (default: name)
    gpus = 4                # a count (devices 0..3) or a list of device ids [0, 2]

The research code's ``cluster_config.json`` (``{"servers": [{"host", "user",
"gpus", "port", "ssh_key"}]}``) is read too. Every problem of a file is reported
at once, naming the file and the key.
"""

from __future__ import annotations

import json
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import attrs

from octcore.errors import ConfigError, Problem


@attrs.frozen
class SshBackendConfig:
    """What ``invoke grid --backend ssh --cluster FILE`` passes to the backend."""

    cluster: str


@attrs.frozen
class HostConfig:
    """One host, with the defaults already applied."""

    name: str
    address: str
    user: str | None = None
    port: int | None = None  # None: ~/.ssh/config or 22
    identity_file: str | None = None  # None: ~/.ssh/config, the agent or the default keys
    gpus: tuple[str, ...] = ()
    jobs_per_gpu: int = 1
    cpu_slots: int = 0
    python: str = "python3"
    workdir: str = "~/oct"
    known_hosts: str | None = None  # None: ~/.ssh/known_hosts
    ssh_config: str | None = None  # None: ~/.ssh/config (Host aliases, HostName, Port, User…)
    trust_on_first_use: bool = False
    cleanup_remote: bool = False
    check_versions: bool = True
    connect_timeout: float = 10.0
    keepalive_interval: float = 2.0
    keepalive_count_max: int = 3
    lost_after: float = 60.0  # seconds a host may be unreachable before its jobs are lost

    def target(self) -> str:
        user = f"{self.user}@" if self.user else ""
        port = f":{self.port}" if self.port else ""
        return f"{user}{self.address}{port}"


@attrs.frozen
class Cluster:
    source: str
    hosts: tuple[HostConfig, ...]

    def host(self, name: str) -> HostConfig | None:
        return next((h for h in self.hosts if h.name == name), None)


# key -> (accepted types, description) for [defaults] and [[hosts]] entries
_FIELDS: dict[str, tuple[tuple[type, ...], str]] = {
    "user": ((str,), "a user name"),
    "port": ((int,), "a port number"),
    "identity_file": ((str,), "a path to a private key"),
    "gpus": ((int, list), "a GPU count or a list of device ids"),
    "jobs_per_gpu": ((int,), "a positive integer"),
    "cpu_slots": ((int,), "a non-negative integer"),
    "python": ((str,), "the remote Python (path or command)"),
    "workdir": ((str,), "the remote work directory"),
    "known_hosts": ((str,), "a known_hosts file"),
    "ssh_config": ((str,), "an OpenSSH client config file"),
    "trust_on_first_use": ((bool,), "true or false"),
    "cleanup_remote": ((bool,), "true or false"),
    "check_versions": ((bool,), "true or false"),
    "connect_timeout": ((int, float), "seconds"),
    "keepalive_interval": ((int, float), "seconds"),
    "keepalive_count_max": ((int,), "a positive integer"),
    "lost_after": ((int, float), "seconds"),
}
_HOST_ONLY = {"name": ((str,), "a host name"), "address": ((str,), "an address or ssh alias")}


def load_cluster(path: str | Path) -> Cluster:
    """Read a cluster file (TOML, or the research code's JSON)."""
    path = Path(path).expanduser()
    source = str(path)
    try:
        text = path.read_text()
    except OSError as exc:
        problem = Problem("", f"cannot read the cluster file: {exc.strerror}")
        raise ConfigError(source, [problem]) from None
    if path.suffix == ".json" or text.lstrip().startswith("{"):
        try:
            raw = json.loads(text)
        except json.JSONDecodeError as exc:
            raise ConfigError(source, [Problem("", f"not valid JSON: {exc}")]) from None
        raw = _from_research_json(raw, source)
    else:
        try:
            raw = tomllib.loads(text)
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(source, [Problem("", f"not valid TOML: {exc}")]) from None
    return cluster_from_dict(raw, source)


def _from_research_json(raw: Any, source: str) -> dict[str, Any]:
    if not isinstance(raw, dict) or not isinstance(raw.get("servers"), list):
        raise ConfigError(source, [Problem("servers", "expected a list of servers")])
    hosts = []
    problems = []
    for index, server in enumerate(raw["servers"]):
        if not isinstance(server, dict) or "host" not in server:
            problems.append(Problem(f"servers[{index}]", "expected an object with a 'host'"))
            continue
        unknown = set(server) - {"host", "user", "gpus", "port", "ssh_key"}
        if unknown:
            problems.append(Problem(f"servers[{index}]", f"unknown keys {sorted(unknown)}"))
        host = {"name": server["host"], "address": server["host"]}
        for old, new in (
            ("user", "user"),
            ("gpus", "gpus"),
            ("port", "port"),
            ("ssh_key", "identity_file"),
        ):
            if old in server:
                host[new] = server[old]
        hosts.append(host)
    if problems:
        raise ConfigError(source, problems)
    return {"hosts": hosts}


def cluster_from_dict(raw: Mapping[str, Any], source: str = "<cluster>") -> Cluster:
    problems: list[Problem] = []
    unknown = set(raw) - {"defaults", "hosts"}
    if unknown:
        problems.append(
            Problem(", ".join(sorted(unknown)), "unknown table (expected [defaults], [[hosts]])")
        )
    defaults = raw.get("defaults", {})
    if not isinstance(defaults, dict):
        problems.append(Problem("defaults", "expected a table"))
        defaults = {}
    problems += _check_entry(defaults, "defaults", _FIELDS)
    hosts_raw = raw.get("hosts")
    if not isinstance(hosts_raw, list) or not hosts_raw:
        problems.append(Problem("hosts", "expected at least one [[hosts]] entry"))
        hosts_raw = []
    hosts: list[HostConfig] = []
    names: set[str] = set()
    for index, entry in enumerate(hosts_raw):
        key = f"hosts[{index}]"
        if not isinstance(entry, dict):
            problems.append(Problem(key, "expected a table"))
            continue
        found = _check_entry(entry, key, {**_FIELDS, **_HOST_ONLY})
        if "name" not in entry and "address" not in entry:
            found.append(Problem(key, "needs a 'name' or an 'address'"))
        problems += found
        if found:
            continue
        merged = {**defaults, **entry}
        name = merged.get("name") or merged["address"]
        if name in names:
            problems.append(Problem(f"{key}.name", f"host {name!r} is listed twice"))
            continue
        names.add(name)
        try:
            hosts.append(_host(merged, name))
        except ValueError as exc:
            problems.append(Problem(key, str(exc)))
    if problems:
        raise ConfigError(source, problems)
    return Cluster(source, tuple(hosts))


def _check_entry(entry: Mapping[str, Any], key: str, fields: Mapping[str, Any]) -> list[Problem]:
    problems = []
    for name, value in entry.items():
        if name not in fields:
            problems.append(
                Problem(f"{key}.{name}", f"unknown key (known: {', '.join(sorted(fields))})")
            )
            continue
        types, what = fields[name]
        if (isinstance(value, bool) and bool not in types) or not isinstance(value, types):
            problems.append(Problem(f"{key}.{name}", f"expected {what}, got {value!r}"))
            continue
        if name in {"port", "jobs_per_gpu", "keepalive_count_max"} and value < 1:
            problems.append(Problem(f"{key}.{name}", f"expected {what}, got {value!r}"))
        if name in {"cpu_slots"} and value < 0:
            problems.append(Problem(f"{key}.{name}", f"expected {what}, got {value!r}"))
        if name in {"connect_timeout", "keepalive_interval", "lost_after"} and value <= 0:
            problems.append(Problem(f"{key}.{name}", f"expected a positive number of {what}"))
        if name == "gpus":
            problems += _check_gpus(value, f"{key}.{name}")
    return problems


def _check_gpus(value: Any, key: str) -> list[Problem]:
    if isinstance(value, int):
        return [] if value >= 0 else [Problem(key, "a GPU count cannot be negative")]
    bad = [v for v in value if isinstance(v, bool) or not isinstance(v, int | str)]
    if bad or len(set(map(str, value))) != len(value):
        return [Problem(key, f"expected distinct device ids (integers), got {value!r}")]
    return []


def _host(merged: Mapping[str, Any], name: str) -> HostConfig:
    gpus_raw = merged.get("gpus", 0)
    gpus = (
        tuple(str(i) for i in range(gpus_raw))
        if isinstance(gpus_raw, int)
        else tuple(map(str, gpus_raw))
    )
    cpu_slots = merged.get("cpu_slots", 0 if gpus else 1)
    if not gpus and cpu_slots == 0:
        raise ValueError(f"host {name!r} has no GPUs and cpu_slots = 0: it offers no slot")
    values = {k: v for k, v in merged.items() if k in _FIELDS and k not in {"gpus", "cpu_slots"}}
    for key in ("connect_timeout", "keepalive_interval", "lost_after"):
        if key in values:
            values[key] = float(values[key])
    return HostConfig(
        name=name,
        address=merged.get("address") or name,
        gpus=gpus,
        cpu_slots=cpu_slots,
        **values,
    )
