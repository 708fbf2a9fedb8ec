"""Mutation score per module from mutmut's results (run `make mutation`, docs/testing.md).

Reads the `mutants/**/*.py.meta` files that `mutmut run` leaves, and prints killed / total per
module: the engine (`factory_tui/engine/`) and the wire protocol (`factory_tui/ingest/protocol.py`
plus the canonical form, hash and validation of `factory_tui/models.py`). A mutant that made the
tests time out counts as killed (the tests noticed); one that no selected test reaches counts as
not killed. Survivors are listed by name, for `mutmut show NAME`. Exits 1 when a module is below
its target, or when no results are found.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

TARGETS = {"engine": 90.0, "protocol": 85.0}
"""The lowest acceptable share of killed mutants per module, in percent."""

MODELS_PROTOCOL = (
    "to_utc_us",
    "canonical_form",
    "WireEvent",
    "describe_validation_error",
    "_short",
    "parse_event",
    "prepare_row",
)
"""The functions (and class) of models.py that belong to the wire protocol: parsing,
validation, the canonical form and its hash. The rest (display helpers, export) is not scored."""
MODELS_NOT_PROTOCOL = ("xǁWireEventǁto_wire",)
"""Inside `WireEvent`, but export, not ingest."""

# mutmut's exit codes (mutmut/stats.py), grouped the way the score counts them.
STATUS = {
    1: "killed",
    3: "killed",
    36: "timeout",
    24: "timeout",
    -24: "timeout",
    152: "timeout",
    255: "timeout",
    0: "survived",
    5: "no tests",
    33: "no tests",
    34: "skipped",
    37: "type check",
    None: "not checked",
}
KILLED = ("killed", "timeout", "type check")


@dataclass
class Tally:
    """Mutant results of one module or file."""

    statuses: Counter[str] = field(default_factory=Counter)
    survivors: list[str] = field(default_factory=list)

    def add(self, name: str, status: str) -> None:
        self.statuses[status] += 1
        if status not in (*KILLED, "not checked"):
            self.survivors.append(f"{name}: {status}")

    @property
    def total(self) -> int:
        return sum(count for status, count in self.statuses.items() if status != "skipped")

    @property
    def killed(self) -> int:
        return sum(self.statuses[status] for status in KILLED)

    @property
    def score(self) -> float:
        return 100.0 * self.killed / self.total if self.total else 0.0

    def line(self, label: str) -> str:
        detail = ", ".join(f"{count} {status}" for status, count in sorted(self.statuses.items()))
        return f"{label:<34} {self.killed:>5} / {self.total:<5} {self.score:6.1f} %   ({detail})"


def module_of(path: str, mutant: str) -> str | None:
    """Which scored module a mutant belongs to (None: mutated but not scored)."""
    if path.startswith("factory_tui/engine/"):
        return "engine"
    if path == "factory_tui/ingest/protocol.py":
        return "protocol"
    if path == "factory_tui/models.py":
        function = mutant.removeprefix("factory_tui.models.").rsplit("__mutmut_", 1)[0]
        if function.startswith(MODELS_NOT_PROTOCOL):
            return None
        name = function.removeprefix("x_").removeprefix("xǁ").split("ǁ")[0]
        return "protocol" if name in MODELS_PROTOCOL else None
    return None


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mutants", type=Path, default=ROOT / "mutants", help="mutmut's folder")
    parser.add_argument("--quiet", action="store_true", help="scores only, no survivor list")
    args = parser.parse_args()

    metas = sorted(args.mutants.glob("factory_tui/**/*.py.meta"))
    modules: dict[str, Tally] = {name: Tally() for name in TARGETS}
    files: dict[str, Tally] = {}
    unscored = Tally()
    for meta in metas:
        path = meta.relative_to(args.mutants).as_posix().removesuffix(".meta")
        results = json.loads(meta.read_text())["exit_code_by_key"]
        for mutant, code in sorted(results.items()):
            status = STATUS.get(code, "suspicious")
            module = module_of(path, mutant)
            if module is None:
                unscored.add(mutant, status)
                continue
            modules[module].add(mutant, status)
            files.setdefault(f"{module}: {path}", Tally()).add(mutant, status)
    if not any(tally.total for tally in modules.values()):
        print(f"no mutmut results under {args.mutants}: run `make mutation` first")
        return 1

    print("mutation score (killed / total; a timeout counts as killed)")
    for name, tally in modules.items():
        print(tally.line(f"{name} (target {TARGETS[name]:.0f} %)"))
    print()
    for label, tally in sorted(files.items()):
        print(tally.line(f"  {label.split(': ', 1)[1]}"))
    if unscored.total:
        print(unscored.line("  (models.py outside the protocol)"))
    if not args.quiet:
        for name, tally in modules.items():
            if tally.survivors:
                print(f"\n{name}: {len(tally.survivors)} not killed (`mutmut show NAME`):")
                for survivor in tally.survivors:
                    print(f"  {survivor}")
    unchecked = sum(tally.statuses["not checked"] for tally in modules.values())
    if unchecked:
        print(f"\n{unchecked} mutants not checked yet: the run was stopped or is still going")
    below = [name for name, tally in modules.items() if tally.score < TARGETS[name]]
    if below:
        print(f"\nbelow target: {', '.join(below)}")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
