"""A pytest plugin for `make mutation`, loaded by `[tool.mutmut] pytest_add_cli_args`.

Registers the hypothesis profile `mutation`: a mutant is killed by any failing example, so
hypothesis stops at the first one instead of shrinking it (shrinking was most of the time a
killed mutant cost). And it runs the hand-written cases before the property tests, so most
mutants die in milliseconds instead of after a few hundred generated examples.
"""

from __future__ import annotations

import pytest
from hypothesis import Phase, settings

settings.register_profile(
    "mutation",
    phases=(Phase.explicit, Phase.reuse, Phase.generate),
    deadline=None,
    print_blob=False,
)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Hand-written cases first, property tests after (a stable sort keeps the rest)."""
    items.sort(
        key=lambda item: bool(getattr(getattr(item, "obj", None), "is_hypothesis_test", False))
    )
