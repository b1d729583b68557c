"""Entry point of the octcache plugin (group ``octcore``): the hook implementations.

Coordinator side (``invoke grid`` with any backend): ``octcore_plan_jobs`` plans
one base job per key missing from the store and records the run's keys in
``<run>/cache-keys.json``; ``octcore_before_job_started`` skips a base job whose
key appeared in the store, holds one back while another owner's lease is live and
otherwise takes the lease; ``octcore_after_job_finished`` publishes the trained
base and releases the lease; ``octcore_resolve_input`` turns a target job's base
key into a verified local directory.

Job side (a plain ``invoke train``): ``octcore_find_base_model`` reuses a stored
base by key and ``octcore_publish_base_model`` stores a base the job trained.
``OCT_STORE=off`` turns all of it off (every job trains its own base inline).
"""

from __future__ import annotations

import atexit
import json
import logging
import threading
import time
from pathlib import Path
from typing import Any

from octcache import planner
from octcache.keys import BaseSpec, DataIdentity, KeyIndex, base_key, base_spec
from octcache.lease import Leases
from octcache.store import Store, default_store_url
from octcore.hookspecs import hookimpl

log = logging.getLogger("octcache")

WAIT_POLL_S = 1.0

_guard = threading.RLock()
_stores: dict[str, Store] = {}
_leases: dict[str, Leases] = {}
_indexes: dict[int, KeyIndex] = {}
_run_keys: dict[Path, dict[str, Any]] = {}


def store_for(url: str) -> Store:
    with _guard:
        if url not in _stores:
            _stores[url] = Store(url)
        return _stores[url]


def leases_for(url: str) -> Leases:
    with _guard:
        if url not in _leases:
            _leases[url] = Leases(store_for(url))
            if len(_leases) == 1:
                atexit.register(_release_all)
        return _leases[url]


def _release_all() -> None:
    """At exit, give back what this process still holds (a crash leaves it to the TTL)."""
    for leases in list(_leases.values()):
        try:
            leases.release_all()
        except Exception as exc:
            log.warning("could not release leases on %s: %s", leases.store.url, exc)


def _index() -> KeyIndex:
    from octcore.plugins import default_plugins

    plugins = default_plugins()
    with _guard:
        return _indexes.setdefault(id(plugins), KeyIndex(plugins))


def _keys_of(run_dir: Path) -> dict[str, Any] | None:
    run_dir = Path(run_dir)
    with _guard:
        found = _run_keys.get(run_dir)
    if found is None:
        found = planner.read_keys(run_dir)
        if found is not None:
            with _guard:
                _run_keys[run_dir] = found
    return found


# --- artifacts: planning ------------------------------------------------------


@hookimpl
def octcore_plan_jobs(experiments: Any, run_dir: Path) -> Any | None:
    url = default_store_url()
    if url is None:
        return None
    from octcore.plugins import default_plugins

    cache_plan = planner.make_plan(list(experiments), store_for(url), default_plugins())
    run_dir = Path(run_dir)
    planner.write_keys(run_dir, cache_plan)
    with _guard:
        _run_keys.pop(run_dir, None)
    return cache_plan.plan


# --- scheduling -----------------------------------------------------------------


@hookimpl
def octcore_before_job_started(run_dir: Path, job: Any) -> str | None:
    if getattr(job, "kind", None) != planner.BASE_KIND:
        return None
    run = _keys_of(run_dir)
    if run is None or job.id not in run["keys"]:
        return None
    key, url = run["keys"][job.id], run["store"]
    store = store_for(url)
    if store.has(key):
        log.info("base %s is in the store already: job %s skipped", key[:12], job.id)
        return "skip"
    leases = leases_for(url)
    if not leases.acquire(key, note=f"{Path(run_dir).name}/{job.id}"):
        return "wait"
    if store.has(key):  # published between the look-up and the lease
        leases.release(key)
        return "skip"
    return "run"


@hookimpl
def octcore_after_job_finished(run_dir: Path, job_id: str, state: str, attempt: int) -> None:
    run = _keys_of(run_dir)
    if run is None or job_id not in run.get("base_jobs", ()):
        return
    key, url = run["keys"][job_id], run["store"]
    store, leases = store_for(url), leases_for(url)
    try:
        if state == "done" and not store.has(key):
            source = Path(run_dir) / "jobs" / job_id / "base"
            spec = BaseSpec.from_dict(run["specs"][key])
            problem = trained_key_problem(Path(run_dir) / "jobs" / job_id, key)
            if problem:
                log.error("base job %s not published: %s", job_id, problem)
            elif (source / "base_model.pt").is_file():
                store.publish(key, spec, source, job=job_id)
                log.info("published base %s from job %s to %s", key[:12], job_id, url)
            else:
                log.error("base job %s is done but %s holds no base_model.pt", job_id, source)
    except Exception as exc:
        log.error("publishing base %s of job %s failed: %s", key[:12], job_id, exc)
    finally:
        leases.release(key)


def trained_key_problem(job_dir: Path, planned: str) -> str | None:
    """Recompute the key from what the job actually trained (its config.json); say why
    it differs from the planned key, or None when they agree."""
    from octcore.config import experiment_from_dict
    from octcore.plugins import default_plugins

    config_path = job_dir / "config.json"
    try:
        config = json.loads(config_path.read_text())
    except (OSError, ValueError) as exc:
        return f"cannot read {config_path}: {exc}"
    experiment = experiment_from_dict(
        config["experiment"], default_plugins(), source=str(config_path), check_data=False
    )
    data = config["data"]
    identity = DataIdentity(
        tuple(data["participants"]), data["fingerprint"], int(data["num_classes"])
    )
    trained = base_key(base_spec(experiment, identity))
    if trained != planned:
        return f"it trained key {trained[:16]} but was planned for {planned[:16]}"
    return None


@hookimpl
def octcore_resolve_input(run_dir: Path, job: Any, item: Any) -> Path | None:
    key = getattr(item, "key", None)
    if key is None:
        return None
    run = _keys_of(run_dir)
    url = run["store"] if run is not None else default_store_url()
    if url is None:
        return None
    store = store_for(url)
    path = store.materialize(key)
    if path is not None:
        store.record_use(key, getattr(job, "id", ""))
    return path


# --- artifacts: the job process -------------------------------------------------


@hookimpl
def octcore_find_base_model(experiment: Any, job_dir: Path) -> Path | None:
    url = default_store_url()
    if url is None:
        return None
    store = store_for(url)
    key = _index().key(experiment)[0]
    path = store.materialize(key)
    if path is None and experiment.mode != "base_only":
        # a coordinator (or another job) is training this very base: wait for it
        leases = leases_for(url)
        while path is None and leases.held_by_other(key) is not None:
            time.sleep(WAIT_POLL_S)
            path = store.materialize(key)
    if path is not None:
        store.record_use(key, Path(job_dir).name)
    return path


@hookimpl
def octcore_publish_base_model(experiment: Any, base_dir: Path) -> None:
    url = default_store_url()
    if url is None:
        return
    store = store_for(url)
    key, spec = _index().key(experiment)
    if store.has(key):
        return
    leases = leases_for(url)
    if leases.held_by_other(key) is not None:
        return  # its holder (a coordinator running this job) publishes it
    try:
        store.publish(key, spec, Path(base_dir), job=Path(base_dir).parent.name)
        store.record_use(key, Path(base_dir).parent.name)
    except OSError as exc:
        log.warning("could not store base %s in %s: %s", key[:12], url, exc)


# --- command line ---------------------------------------------------------------


@hookimpl
def octcore_register_tasks() -> list[Any]:
    from octcache.tasks import task_specs

    return task_specs()
