"""The built-in data set families, registered like any plugin's.

Imported by the plugin manager as the ``octcore.data.plugin`` built-in; a data set
from another package registers the same way, through its own hook.
"""

from __future__ import annotations

from octcore.hookspecs import hookimpl
from octcore.registry import DatasetSpec


@hookimpl
def octcore_register_datasets() -> list[DatasetSpec]:
    # imported here, not at module level: commands that never touch data (status,
    # logs) then start without loading torch
    from octcore.data import files, hapt, synthetic

    return [
        DatasetSpec(
            name="hapt",
            options_cls=hapt.HaptOptions,
            load=hapt.load,
            participants=hapt.participants,
            description="UCI HAPT: 30 users, 6 IMU channels at 50 Hz, 6 activities (default)",
        ),
        DatasetSpec(
            name="pt-dir",
            options_cls=files.PtDirOptions,
            load=files.load,
            participants=files.participants,
            description="a directory of {participant}_{train,val,test}.pt files holding (X, y)",
        ),
        DatasetSpec(
            name="npz-dir",
            options_cls=files.NpzDirOptions,
            load=files.load,
            participants=files.participants,
            description="a directory of {participant}_{train,val,test}.npz files with X and y",
        ),
        DatasetSpec(
            name="synthetic",
            options_cls=synthetic.SyntheticOptions,
            load=synthetic.load,
            participants=synthetic.participants,
            description="generated participants with participant-specific shifts (tests, demos)",
        ),
    ]
