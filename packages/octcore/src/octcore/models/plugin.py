"""Built-in plugin: the model families that ship with octcore."""

from octcore.hookspecs import hookimpl
from octcore.registry import ModelSpec


@hookimpl
def octcore_register_models() -> list[ModelSpec]:
    from octcore.models import cnn1d  # lazily: see octcore.data.plugin

    return [
        ModelSpec(
            name="cnn1d",
            params_cls=cnn1d.Cnn1dParams,
            build=cnn1d.build,
            description="1D CNN (conv, channel layer norm, ReLU, pool), the research TestModel",
            aliases=("test",),
        )
    ]
