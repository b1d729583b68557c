"""``invoke train``: one personalisation experiment, with the research scripts' flags."""

from __future__ import annotations

import logging
from datetime import datetime
from pathlib import Path

from invoke import task

from octcore import outputs
from octcore.cli.common import fail, plugins_for_cli
from octcore.cli.console import ProgressListener, console, result_table
from octcore.cli.flags import overrides_from_flags
from octcore.config import load_experiment, resolve_fold
from octcore.errors import ConfigError, OctError

HELP = {
    "config": "experiment file (TOML, or a research-code JSON job dict); flags override it",
    "fold": "index into the participant list: that participant is the target (default 0)",
    "device": "auto (default), cpu, cuda, cuda:N or a GPU index N",
    "batch_size": "windows per batch (default 64)",
    "mode": "full_fine_tuning (default), target_only_fine_tuning, target_only, "
    "last_layer_only or base_only",
    "target_batch_pct": "full_fine_tuning only: fraction p of every batch drawn from the target; "
    "k = round(B*p) target windows (>= 1 if p > 0, <= B-1 if p < 1); an epoch is one pass over "
    "the target windows, the base stream cycles. Unset: uniform over base + target windows",
    "target_data_pct": "fraction of the target's training windows kept (seeded by --seed)",
    "prefix": "run name: outputs go to OUTPUT/PREFIX/fold{fold}_{target} (default: a timestamp)",
    "lr": "AdamW learning rate (default 1e-3; the research scripts used 3e-4)",
    "participants": "ordered participant ids, comma-separated (default: all of the data set)",
    "n_base_participants": '"all" or N: the first N non-target participants form the base',
    "dataset": "data set name (hapt, pt-dir, npz-dir, synthetic, or a plugin's)",
    "data_path": "directory of {participant}_{split}.pt files (implies --dataset pt-dir)",
    "model": "model name (cnn1d, alias test)",
    "early_stopping_patience": "base-phase patience in epochs (default 8)",
    "early_stopping_patience_target": "target-phase patience in epochs (default 8)",
    "early_stopping_metric": "loss (default) or f1",
    "max_epochs": "epoch bound per phase (default 50)",
    "seed": "base seed (also picks the target data subset)",
    "seed_finetune": "fine-tuning seed (default: --seed)",
    "pos_weight": "positive-class weight for binary data (BCE; default 1)",
    "base_channels": "cnn1d: channels C of the first blocks (the last has 2C; default 8)",
    "num_blocks": "cnn1d: number of conv blocks, at least 2 (default 4)",
    "use_dilation": "cnn1d: dilation 2^i in block i",
    "use_residual": "cnn1d: residual blocks (1x1 projection where channels change)",
    "dropout": "cnn1d: dropout before the linear head (default 0.5)",
    "use_augmentation": "augment training batches (jitter and magnitude scaling)",
    "jitter_std": "std of the Gaussian jitter (default 0.005)",
    "magnitude_range": "LOW,HIGH of the magnitude scale factor (default 0.98,1.02)",
    "aug_prob": "probability that a window is augmented (default 0.3)",
    "output": "root directory for runs (default: runs)",
    "force": "overwrite a complete job directory",
}


@task(help=HELP, auto_shortflags=False)
def train(
    c,
    config=None,
    fold=None,
    device=None,
    batch_size=None,
    mode=None,
    target_batch_pct=None,
    target_data_pct=None,
    prefix=None,
    lr=None,
    participants=None,
    n_base_participants=None,
    dataset=None,
    data_path=None,
    model=None,
    base_channels=None,
    num_blocks=None,
    use_dilation=False,
    use_residual=False,
    dropout=None,
    use_augmentation=False,
    jitter_std=None,
    magnitude_range=None,
    aug_prob=None,
    early_stopping_patience=None,
    early_stopping_patience_target=None,
    early_stopping_metric=None,
    max_epochs=None,
    seed=None,
    seed_finetune=None,
    pos_weight=None,
    output="runs",
    force=False,
):
    """Train a base model on all participants but the target, adapt it, compare on the target."""
    flags = {k: v for k, v in locals().items() if k not in {"c", "config", "output", "force"}}
    try:
        plugins = plugins_for_cli()
        overrides, problems = overrides_from_flags(flags)
        if problems:
            raise ConfigError("command line", problems)
        experiment = load_experiment(Path(config) if config else None, overrides, plugins)
        spec = plugins.datasets.get(experiment.dataset.name)
        fold = resolve_fold(experiment, spec.participants(experiment.dataset.options))
        name = experiment.prefix or datetime.now().strftime("%Y%m%d_%H%M%S")
        job_dir = Path(output) / name / f"fold{experiment.fold}_{fold.target}"
        if outputs.is_complete(job_dir) and not force:
            raise OctError(
                f"{job_dir} holds a complete job; choose another --prefix or pass --force"
            )
        from octcore.job import run_job

        job_dir.mkdir(parents=True, exist_ok=True)
        handler = logging.FileHandler(job_dir / outputs.LOG)
        handler.setFormatter(logging.Formatter("%(asctime)s %(message)s"))
        job_log = logging.getLogger("octcore.job")
        job_log.setLevel(logging.INFO)
        job_log.addHandler(handler)
        console.print(
            f"fold {experiment.fold}: target [bold]{fold.target}[/], {len(fold.base)} base "
            f"participants, mode {experiment.mode} → {job_dir}"
        )
        try:
            with ProgressListener.make_progress() as progress:
                metrics = run_job(
                    experiment, job_dir, plugins, listener=ProgressListener(progress), force=force
                )
        finally:
            job_log.removeHandler(handler)
            handler.close()
    except OctError as exc:
        fail(exc)
    reused = (metrics.get("base") or {}).get("reused_from")
    if reused:
        console.print(f"base model: not trained again, adapted the stored one in {reused}")
    console.print(result_table(metrics))
    console.print(f"outputs: {job_dir}")
