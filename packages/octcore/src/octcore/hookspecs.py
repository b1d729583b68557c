"""The hooks through which plugins extend oct.

Every hook is named ``octcore_<verb>_<object>``, is declared here and only here,
and says when it fires, what each argument is and what its return value means.
Core code never calls ``pm.hook.<name>`` directly: it goes through the typed
facade ``octcore.plugins.Plugins``.

The hooks fall in three families:

registries
    plugins add data sets, models, backends and CLI task collections by name;
scheduling
    the executor tells plugins about job lifecycle events (where a job can run and
    how it is launched is the backend's own interface, ``octcore.backend.Backend``);
artifacts
    a planner turns experiments into a DAG of jobs (base jobs, then target jobs),
    and the job process asks for a base model by key and publishes one it trained.

A plugin is any module or object with functions marked ``@octcore.hookimpl``,
registered through the ``octcore`` entry-point group::

    [project.entry-points.octcore]
    my-plugin = "my_package.plugin"
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import pluggy

if TYPE_CHECKING:
    from collections.abc import Sequence
    from pathlib import Path

    from octcore.registry import BackendSpec, DatasetSpec, ModelSpec, TaskSpec

PROJECT = "octcore"

hookspec = pluggy.HookspecMarker(PROJECT)
hookimpl = pluggy.HookimplMarker(PROJECT)


# --- registries -------------------------------------------------------------


@hookspec
def octcore_register_datasets() -> Sequence[DatasetSpec]:
    """Return the data set families this plugin provides.

    Fires once, when the plugin manager is built. Each ``DatasetSpec`` names a
    family (``hapt``, ``pt-dir``…), the attrs class of its options, a cheap
    ``participants(options)`` and a ``load(options)`` returning an
    ``octcore.data.Dataset``. Return an empty sequence to add nothing. A name (or
    alias) that another plugin already registered is an error naming both.
    """


@hookspec
def octcore_register_models() -> Sequence[ModelSpec]:
    """Return the model families this plugin provides.

    Fires once, when the plugin manager is built. Each ``ModelSpec`` names a family,
    the attrs class of its parameters (an experiment's ``[model]`` table less
    ``name``) and ``build(params, in_channels, window, num_outputs)``, which returns a
    module with a ``head`` submodule. Duplicate names are an error naming both
    plugins.
    """


@hookspec
def octcore_register_backends() -> Sequence[BackendSpec]:
    """Return the execution backends this plugin provides.

    Fires once, when the plugin manager is built. Each ``BackendSpec`` names a
    backend (``local``, ``ssh``), the attrs class of its configuration and a
    ``factory(config, run)`` returning an ``octcore.backend.Backend``. The grid
    command's ``--backend NAME`` looks names up here; an unknown name lists what is
    installed and which package would add it.
    """


@hookspec
def octcore_register_tasks() -> Sequence[TaskSpec]:
    """Return invoke task collections to add to the command line.

    Fires once, when the CLI is assembled. Each ``TaskSpec`` is added as a
    sub-collection under its ``name`` (``cache`` makes ``invoke cache.ls``), so an
    installed plugin grows the CLI without the core knowing it.
    """


# --- scheduling ------------------------------------------------------------------


@hookspec
def octcore_after_job_finished(run_dir: Path, job_id: str, state: str, attempt: int) -> None:
    """Called by the executor after a job reaches a final state for one attempt.

    ``run_dir`` is the run directory, ``job_id`` the job's id, ``state`` one of
    ``done``, ``failed``, ``timeout`` or ``lost``, and ``attempt`` counts from 1.
    Fires in the coordinator process, after the state is in the journal (so a
    plugin that reads the journal sees it). The return value is ignored. Plugins
    must not block here: it runs on the executor's loop.
    """


@hookspec(firstresult=True)
def octcore_before_job_started(run_dir: Path, job: Any) -> str | None:
    """Asked by the executor just before it stages a ready job.

    ``job`` is the ``octcore.plan.PlannedJob``. Return ``"run"`` (or ``None``) to
    start it, ``"wait"`` to hold it back and ask again later (another coordinator
    holds a lease on what it would produce), or ``"skip"`` to mark it done without
    running it (what it would produce now exists). First result wins.
    """


# --- artifacts -------------------------------------------------------------------


@hookspec(firstresult=True)
def octcore_plan_jobs(experiments: Sequence[Any], run_dir: Path) -> Any | None:
    """Turn a grid's experiments into a DAG of jobs.

    Fires once per ``invoke grid``/``invoke plan``, before any job runs.
    ``experiments`` are the grid's resolved ``octcore.config.Experiment`` objects in
    grid order. Return an ``octcore.plan.Plan`` (jobs and their dependencies), or
    ``None`` to leave planning to the next plugin; when no plugin plans, every
    experiment becomes one independent job that trains its own base inline.
    First result wins.
    """


@hookspec(firstresult=True)
def octcore_resolve_input(run_dir: Path, job: Any, item: Any) -> Path | None:
    """Turn a job's ``octcore.plan.Input`` that names an artifact ``key`` into a local path.

    Fires in the coordinator when a job is about to be staged, for each input whose
    ``key`` is set. Return a local directory holding the artifact, or ``None`` if
    this plugin does not know the key (the job then waits). First result wins.
    """


@hookspec(firstresult=True)
def octcore_find_base_model(experiment: Any, job_dir: Path) -> Path | None:
    """Ask for the base model an experiment adapts.

    Fires in the job process, before the base phase of a mode that needs a base
    (``full_fine_tuning``, ``target_only_fine_tuning``, ``last_layer_only``,
    ``base_only``), unless the job's spec already names a staged ``base`` input.
    ``experiment`` is the job's ``Experiment``, ``job_dir`` its directory.
    Return a directory holding a verified ``base_model.pt`` and ``base.json``
    (as ``octcore.job`` writes them) to skip base training, or ``None`` to train
    the base inline. First result wins.
    """


@hookspec
def octcore_publish_base_model(experiment: Any, base_dir: Path) -> None:
    """Offer a base model that the job process just trained.

    Fires in the job process right after the base phase ends, with ``base_dir``
    holding ``base_model.pt``, ``base.json`` and the base phase's history. A store
    plugin copies it under its key; the job does not wait for anything but the
    return. The return value is ignored.
    """
