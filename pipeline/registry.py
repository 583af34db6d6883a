"""The closed sets gradlab compares (losses, optimizers, clipping modes), found by module.

A package such as pipeline.optimizers holds one module per member; each defines its
member under one attribute name (`OPTIMIZER`). `discover` imports every module of the
package and returns the members by name, in the order of their module names, so adding a
member is adding its module: nothing else lists them.
"""

import importlib
import pkgutil
from collections.abc import Iterable
from typing import Protocol, TypeVar


class Member(Protocol):
    @property
    def name(self) -> str: ...


M = TypeVar("M", bound=Member)


def discover(package: str, path: Iterable[str], attribute: str, kind: type[M]) -> dict[str, M]:
    """{name: member} of every module of `package` (its `path`) that defines `attribute`
    as a `kind`; ValueError when a member's name is not its module's."""
    found: dict[str, M] = {}
    for info in sorted(pkgutil.iter_modules(path), key=lambda m: m.name):
        member = getattr(importlib.import_module(f"{package}.{info.name}"), attribute, None)
        if isinstance(member, kind):
            if member.name != info.name:
                raise ValueError(
                    f"{package}.{info.name} defines {member.name!r}: name it as its file"
                )
            found[member.name] = member
    return found
