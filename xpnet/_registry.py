"""Name -> object lookup shared by layers, losses, metrics and optimizers."""
from __future__ import annotations

__all__ = ["resolve"]


def resolve(spec, registry: dict, base: type, kind: str, **kwargs):
    """An instance of ``base`` from an instance, a subclass, or a name in ``registry``
    (the last two made with ``kwargs``).

    An unknown name is a ``ValueError`` that lists the valid names; anything else is a
    ``TypeError`` that says what is accepted.
    """
    if isinstance(spec, base):
        return spec
    if isinstance(spec, type) and issubclass(spec, base):
        return spec(**kwargs)
    if isinstance(spec, str):
        factory = registry.get(spec.lower())
        if factory is None:
            raise ValueError(f"unknown {kind} {spec!r}; valid names are: {', '.join(registry)}")
        return factory(**kwargs)
    raise TypeError(f"the {kind} must be a name or a {base.__name__}, got {type(spec).__name__}")
