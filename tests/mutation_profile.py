"""A pytest plugin for `make mutation`, loaded by `[tool.mutmut] pytest_add_cli_args`.

Registers the hypothesis profile `mutation`: a mutant is killed by any failing example, so
hypothesis stops at the first one instead of shrinking it (shrinking was most of the time a
killed mutant cost). The example database stays on: an example that killed one mutant is tried
first on the next.
"""

from __future__ import annotations

from hypothesis import Phase, settings

settings.register_profile(
    "mutation",
    phases=(Phase.explicit, Phase.reuse, Phase.generate),
    deadline=None,
    print_blob=False,
)
