"""The cluster file: TOML, the research code's JSON, and errors that name file and key."""

from __future__ import annotations

import json

import pytest

from octcore.errors import ConfigError
from octsched_ssh.config import load_cluster


def write(tmp_path, text, name="cluster.toml"):
    path = tmp_path / name
    path.write_text(text)
    return path


def test_defaults_apply_and_hosts_override(tmp_path):
    cluster = load_cluster(
        write(
            tmp_path,
            """
[defaults]
user = "alice"
python = "/opt/venv/bin/python"
jobs_per_gpu = 2

[[hosts]]
name = "gpu1"
address = "gpu1.lab"
gpus = 2

[[hosts]]
name = "gpu2"
gpus = [1, 3]
user = "bob"
port = 2222

[[hosts]]
address = "cpu-box"
cpu_slots = 4
""",
        )
    )
    gpu1, gpu2, cpu = cluster.hosts
    assert (gpu1.user, gpu1.gpus, gpu1.jobs_per_gpu, gpu1.cpu_slots) == ("alice", ("0", "1"), 2, 0)
    assert (gpu2.user, gpu2.port, gpu2.gpus, gpu2.address) == ("bob", 2222, ("1", "3"), "gpu2")
    assert (cpu.name, cpu.gpus, cpu.cpu_slots) == ("cpu-box", (), 4)
    assert gpu1.python == "/opt/venv/bin/python"
    assert gpu1.known_hosts is None and not gpu1.trust_on_first_use  # ~/.ssh/known_hosts, checked


def test_research_cluster_config_json_is_read(tmp_path):
    path = write(
        tmp_path,
        json.dumps(
            {
                "servers": [
                    {
                        "host": "10.0.0.5",
                        "user": "lab",
                        "gpus": 4,
                        "port": 2200,
                        "ssh_key": "~/.ssh/lab",
                    },
                    {"host": "10.0.0.6", "gpus": 2},
                ]
            }
        ),
        "cluster_config.json",
    )
    first, second = load_cluster(path).hosts
    assert (first.address, first.user, first.port, first.identity_file) == (
        "10.0.0.5",
        "lab",
        2200,
        "~/.ssh/lab",
    )
    assert first.gpus == ("0", "1", "2", "3") and second.gpus == ("0", "1")


def test_every_problem_is_named_with_file_and_key(tmp_path):
    path = write(
        tmp_path,
        """
[defaults]
jobs_per_gpu = 0
colour = "blue"

[[hosts]]
name = "a"
gpus = "four"

[[hosts]]
name = "a"

[[hosts]]
port = 22
""",
    )
    with pytest.raises(ConfigError) as caught:
        load_cluster(path)
    text = str(caught.value)
    assert str(path) in text
    for key in ("defaults.jobs_per_gpu", "defaults.colour", "hosts[0].gpus", "hosts[2]"):
        assert key in text, key


def test_duplicate_host_and_no_slots_are_errors(tmp_path):
    with pytest.raises(ConfigError, match="listed twice"):
        load_cluster(write(tmp_path, '[[hosts]]\nname = "a"\n[[hosts]]\nname = "a"\n'))
    with pytest.raises(ConfigError, match="offers no slot"):
        load_cluster(write(tmp_path, '[[hosts]]\nname = "a"\ncpu_slots = 0\n'))


def test_missing_file_and_bad_syntax_name_the_file(tmp_path):
    with pytest.raises(ConfigError, match="cannot read"):
        load_cluster(tmp_path / "nope.toml")
    with pytest.raises(ConfigError, match="not valid TOML"):
        load_cluster(write(tmp_path, "[[hosts]\n"))


def test_version_check_names_each_difference():
    from octsched_ssh.backend import version_problem
    from octsched_ssh.config import HostConfig

    here = {"octcore": "0.1.0", "python": "3.11.7", "torch": "2.13.0"}
    host = HostConfig("g", "g", gpus=("0", "1"))
    same = {
        "octcore": "0.1.0",
        "python": "3.11.2",
        "torch": "2.13.0",
        "gpus": 2,
        "tmux": "tmux 3.3a",
    }
    assert version_problem(host, same, here) is None
    assert version_problem(host, dict(same, torch="2.13.0+cu124"), here) is None
    other = dict(same, octcore="0.0.9", torch="2.12.0", gpus=1)
    message = version_problem(host, other, here)
    assert "octcore 0.0.9 there, 0.1.0 here" in message
    assert "torch 2.12.0 there" in message and "1 CUDA device" in message
    assert "tmux" in version_problem(host, dict(same, tmux=None), here)
    assert "Python 3.10.1" in version_problem(host, dict(same, python="3.10.1"), here)


def test_plugin_registers_backend_and_tasks():
    from octcore.plugins import default_plugins

    plugins = default_plugins()
    spec = plugins.backends.get("ssh")
    assert spec.config_cls.__name__ == "SshBackendConfig"
    cluster = next(t for t in plugins.tasks if t.name == "cluster")
    assert {"check", "sync"} <= set(cluster.collection.tasks)
