"""The summary bar: feed status, shift, worker states and factory figures, packed to the width.

The bar renders frozen values handed down by the app — `SummaryFigures` (from the Snapshot),
`FeedStatus` (live / paused / stale / no owner), `ViewState` (sort and filter), the number of active
alerts and, on a site that forwards its events, the `ForwardState` — each a reactive that only
redraws the bar when its displayed text changed.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import ClassVar, Final, Literal

from rich.cells import cell_len
from rich.segment import Segment
from rich.style import Style
from rich.text import Text
from textual.geometry import Size
from textual.reactive import reactive
from textual.strip import Strip
from textual.widget import Widget

from factory_tui.engine.snapshot import Snapshot, Window
from factory_tui.records import ForwardState, MqttState
from factory_tui.widgets.formatting import MISSING, clip, hours_minutes, percent, rate, span

FeedState = Literal["loading", "live", "paused", "stale", "unowned"]
FEED_WORDS: Final[dict[FeedState, str]] = {
    "loading": "LOADING",
    "live": "LIVE",
    "paused": "PAUSED",
    "stale": "STALE",
    "unowned": "NO OWNER",
}
_GAP: Final = "  "

Chip = list[tuple[str, Style]]
_Packing = tuple[tuple[object, ...], list[Text], dict[int, tuple[Style, Strip]]]
"""Packed lines, what they were packed from, and those drawn so far (by line, with the style)."""
Fit = Literal["full", "short", "lean", "leaner", "terse", "tersest"]
FITS: Final[tuple[Fit, ...]] = ("full", "short", "lean", "leaner", "terse", "tersest")
"""Tried in turn until the bar fits its usual height: full words; short ones (`sort util ↓`,
no "press 4", PAUSED's "as of" without "space resumes"); without PAUSED's "as of" (the word
PAUSED, the title and the footer say it); without "0 alerts"; abbreviated (`3h02m/8h00m`,
`131/h`, `util`, `UPH`, `rej`, `unobs`, `fwd 1,204 behind`, `fwd down 3m, 12k behind`,
`/“W1” 1/6` for the filter); and without the calm states (the default sort, forward caught up,
MQTT up) or the backlog beside a forward outage, the worker states as four items."""
_TERSE_ERROR: Final = 24
"""Cells of a forwarding failure's own words kept on a terse bar."""


@dataclass(frozen=True, slots=True)
class IngestFigures:
    """What the ingest reports: accepted events per second and rejected lines (None: unknown)."""

    rate_per_s: float | None
    rejected: int | None


@dataclass(frozen=True, slots=True)
class SummaryFigures:
    """The bar's figures as displayed text, built from one Snapshot."""

    window_title: str
    elapsed: str
    working: int
    idle: int
    absent: int
    unobserved: int
    units: str
    throughput: str
    utilization: str
    uph: str
    ingest_rate: str
    rejected: str

    @classmethod
    def build(
        cls,
        snapshot: Snapshot,
        window_title: str,
        shift: Window,
        ingest: IngestFigures | None,
    ) -> SummaryFigures:
        """The figures of `snapshot`, taken over the part of `shift` (titled `window_title`,
        e.g. `Shift A`) that has run so far."""
        elapsed_s = max(0, min(snapshot.at_us, shift.to_us) - shift.from_us) / 1_000_000
        factory = snapshot.factory
        rate_text = MISSING
        rejected = MISSING
        if ingest is not None:
            rate_text = rate(ingest.rate_per_s)
            rejected = MISSING if ingest.rejected is None else f"{ingest.rejected:,}"
        return cls(
            window_title=window_title,
            elapsed=f"{hours_minutes(elapsed_s)} of {hours_minutes(shift.seconds)}",
            working=factory.working,
            idle=factory.idle,
            absent=factory.absent,
            unobserved=factory.unobserved,
            units=f"{factory.units:,}",
            throughput=rate(factory.throughput_uph),
            utilization=percent(factory.avg_utilization),
            uph=rate(factory.avg_uph),
            ingest_rate=rate_text,
            rejected=rejected,
        )


@dataclass(frozen=True, slots=True)
class FeedStatus:
    """Whether the figures are live; `detail` says as of when, or what went wrong."""

    state: FeedState
    detail: str = ""


@dataclass(frozen=True, slots=True)
class ViewState:
    """The grid's sort and filter, and how many tiles the filter leaves."""

    sort_label: str
    filter_text: str = ""
    shown: int = 0
    total: int = 0
    sort_short: str = ""
    """The sort in a word or two, for a narrow bar ("" : the label itself)."""
    sort_default: bool = False
    """The grid is in its default order (the tersest bar leaves the sort out)."""


class SummaryBar(Widget):
    """Feed status, shift and elapsed time, worker states and the factory's figures.

    Items are packed into as few lines as the width allows (two at 120 columns, three at 80);
    an item is never split across lines. The bar keeps the height it has when live, whatever
    the sort, a pause, a filter or a forward or MQTT chip: where the full words need another
    line, it says them shorter (`sort util ↓`, no "space resumes"), then leaves out what the
    screen says elsewhere (PAUSED's "as of", "0 alerts"), then abbreviates (`131/h`, `fwd`,
    `/“W1” 1/6`), then leaves out the calm states (default sort, forward caught up, MQTT up).
    Only what cannot go may still make it taller: a long stale reason, or an outage of both
    links beside a pause, alerts, a sort and a filter at 80 columns.
    """

    COMPONENT_CLASSES: ClassVar[set[str]] = {
        "summary-bar--label",
        "summary-bar--value",
        "summary-bar--loading",
        "summary-bar--live",
        "summary-bar--paused",
        "summary-bar--stale",
        "summary-bar--unowned",
        "summary-bar--working",
        "summary-bar--idle",
        "summary-bar--absent",
        "summary-bar--unobserved",
        "summary-bar--alerts",
        "summary-bar--forward-down",
    }

    DEFAULT_CSS = """
    SummaryBar {
        width: 1fr;
        height: auto;
        padding: 0 1;
    }
    """

    figures: reactive[SummaryFigures | None] = reactive(None)
    """Figures of the latest Snapshot (None until the first one)."""
    status: reactive[FeedStatus] = reactive(FeedStatus("loading"))
    """Live, paused, stale, loading, or no owner (a viewer of a database nobody listens for)."""
    view: reactive[ViewState] = reactive(ViewState("name"))
    """Sort and filter of the grid."""
    alerts: reactive[int | None] = reactive(None)
    """Active alerts (None until the first tick); `4` lists them."""
    forward: reactive[ForwardState | None] = reactive(None)
    """Store-and-forward to the central database (None: this console does not forward)."""
    mqtt: reactive[MqttState | None] = reactive(None)
    """The MQTT subscription (None: this console subscribes to none)."""

    def validate_mqtt(self, state: MqttState | None) -> MqttState | None:
        # Only what the chip shows: the counters would redraw the bar on every message.
        return None if state is None else replace(state, messages=0, in_flight=0)

    # The reactives only repaint: a layout pass of the whole screen every tick cost more than
    # the rest of the bar (cProfile at 200x60). The layout is redone only when the number of
    # lines changes.
    def watch_figures(self) -> None:
        self._relayout_if_taller_or_shorter()

    def watch_status(self) -> None:
        self._relayout_if_taller_or_shorter()

    def watch_view(self) -> None:
        self._relayout_if_taller_or_shorter()

    def watch_alerts(self) -> None:
        self._relayout_if_taller_or_shorter()

    def watch_forward(self) -> None:
        self._relayout_if_taller_or_shorter()

    def watch_mqtt(self) -> None:
        self._relayout_if_taller_or_shorter()

    def _relayout_if_taller_or_shorter(self) -> None:
        width = self.content_region.width
        if width and len(self._lines(width)) != self.content_region.height:
            self.refresh(layout=True)

    def get_content_height(self, container: Size, viewport: Size, width: int) -> int:
        return len(self._lines(width))

    def notify_style_update(self) -> None:
        super().notify_style_update()
        self._packed = None  # a theme switch recolours every chip
        self._components = None

    _components: dict[str, Style] | None = None

    def _component(self, name: str) -> Style:
        """A component class's style, kept until the styles change: Textual drops its own
        copy on every `refresh`, and the bar refreshes every tick (a DOM walk per chip)."""
        if self._components is None:
            self._components = {}
        style = self._components.get(name)
        if style is None:
            style = self._components[name] = self.get_component_rich_style(name)
        return style

    def render(self) -> Text:
        """The packed lines (as text; the screen draws them with `render_line`)."""
        lines = self._lines(self.content_region.width or self.size.width)
        return Text("\n", no_wrap=True).join(lines)

    def render_line(self, y: int) -> Strip:
        """Line `y` of the packed lines in the bar's style, as Textual would draw `render`'s
        text, without its Content pipeline (the bar's drawing at 200x60: 1.45 -> 0.58 ms a tick)."""
        _, lines, strips = self._packing(self.content_region.width or self.size.width)
        base = self.rich_style
        kept = strips.get(y)
        if kept is not None and kept[0] == base:
            return kept[1]
        text = lines[y] if y < len(lines) else Text()
        segments = Segment.apply_style(text.render(self.app.console), base)
        strip = Strip(segments).apply_offsets(0, y)  # for text selection, as Textual's own
        strips[y] = (base, strip)
        return strip

    _packed: _Packing | None = None
    """The last `_lines`, what they were packed from and their lines drawn so far: a tick asks
    twice (the height check and the paint), 0.5 ms each at 200x60."""

    def _lines(self, width: int) -> list[Text]:
        return self._packing(width)[1]

    def _packing(self, width: int) -> _Packing:
        width = max(1, width)
        given = (width, self.status, self.figures, self.view, self.alerts, self.forward, self.mqtt)
        if self._packed is None or self._packed[0] != given:
            self._packed = (given, self._fitted(width), {})
        return self._packed

    def _fitted(self, width: int) -> list[Text]:
        # The bar's usual height (the longest feed word once loaded, short words, no filter,
        # no forward or MQTT chip).
        budget = len(self._pack(self._chips(calm=True), width))
        for fit_in in FITS:
            lines = self._pack(self._chips(fit_in=fit_in), width)
            if len(lines) <= budget:
                break
        return lines + [Text()] * (budget - len(lines))  # never shorter either

    def _chips(self, *, fit_in: Fit = "full", calm: bool = False) -> list[Chip]:
        """Feed status and window first, then the figures, then the view (sort, filter).

        `fit_in`: how hard to try to fit (see `FITS`). `calm`: as when live, with neither a
        forward nor an MQTT chip, to measure the bar's usual height."""
        label = self._component("summary-bar--label")
        value = self._component("summary-bar--value")

        def state(name: str, count: int, word: str = "") -> tuple[str, Style]:
            style = self._component(f"summary-bar--{name}")
            return (f"{count} {word or name}", style)

        status, figures, view = self.status, self.figures, self.view
        short = calm or fit_in != "full"
        lean = fit_in in ("lean", "leaner", "terse", "tersest")
        terse = fit_in in ("terse", "tersest")
        feed_style = self._component(f"summary-bar--{status.state}")
        feed = FEED_WORDS[status.state]
        if calm:
            feed = FEED_WORDS["paused"]  # LIVE, STALE and PAUSED: the longest
        chips: list[Chip] = [[(f" {feed} ", feed_style)]]
        if figures is not None:
            elapsed = figures.elapsed.replace(" of ", "/") if terse else figures.elapsed
            chips.append([(figures.window_title, value), (" " + elapsed, label)])
        detail = "" if calm else status.detail
        if status.state == "paused" and detail:
            # The word PAUSED, the title and the footer's space key say the rest.
            detail = "" if lean else detail.split(" · ")[0] if short else detail
        if detail:
            chips.append([(detail, label)])
        tersest = fit_in == "tersest"
        if figures is not None:
            states = [
                [state("working", figures.working), state("idle", figures.idle)],
                [
                    state("absent", figures.absent),
                    state("unobserved", figures.unobserved, "unobs" if terse else ""),
                ],
            ]
            for pair in states:  # read as pairs; apart, the tersest bar packs them tighter
                chips += [[one] for one in pair] if tersest else [[pair[0], ("  ", label), pair[1]]]
            chips += [
                [(figures.units, value), (" units", label)],
                [(figures.throughput, value), ("/h" if terse else " units/h", label)],
                [("util " if terse else "avg util ", label), (figures.utilization, value)],
                [("UPH " if terse else "avg UPH ", label), (figures.uph, value)],
                [(figures.ingest_rate, value), (" ev/s", label)],
                [(figures.rejected, value), (" rej" if terse else " rejected", label)],
            ]
        # The tersest bar says the forward and MQTT states only when they need a look.
        forward, mqtt = self.forward, self.mqtt
        if forward is not None and not calm:
            caught_up = forward.behind == 0 and forward.down_s is None and not forward.error
            if not (tersest and caught_up):
                chips.append(self._forward_chip(forward, label, value, fit_in=fit_in))
        if mqtt is not None and not calm and not (tersest and mqtt.down_s is None):
            # Down in the outage colour; up, quietly.
            down = mqtt.down_s is not None
            part = "summary-bar--forward-down" if down else "summary-bar--label"
            chips.append([(mqtt.describe(), self._component(part))])
        if self.alerts:
            noun = "alert" if self.alerts == 1 else "alerts"
            style = self._component("summary-bar--alerts")
            chip: Chip = [(f" {self.alerts} {noun} ", style)]
            chips.append(chip if short else [*chip, (" press 4", label)])
        elif self.alerts == 0 and fit_in in ("full", "short", "lean"):
            chips.append([("0 alerts", label)])
        if not (tersest and view.sort_default):
            sort_label = view.sort_short if short and view.sort_short else view.sort_label
            chips.append([("sort ", label), (sort_label, value)])
        if view.filter_text and not calm:
            counts = (f" {view.shown}/{view.total}", label)
            if terse:  # `/` is the filter's key
                chips.append([("/", label), (f"“{view.filter_text}”", value), counts])
            else:
                chips.append([("filter ", label), (f"“{view.filter_text}”", value), counts])
        return chips

    def _forward_chip(
        self, forward: ForwardState, label: Style, value: Style, *, fit_in: Fit
    ) -> Chip:
        """The forward state: caught up, N events behind, or the central database unreachable;
        terse (see `FITS`), in fewer words: `fwd 1,204 behind`, `fwd down 3m, 1.2M behind`,
        then `fwd down 3m`."""
        down = self._component("summary-bar--forward-down")
        if fit_in not in ("terse", "tersest"):
            if forward.down_s is not None or forward.error:
                return [(forward.describe(), down)]
            return [("forward ", label), (forward.describe(), value)]
        backlog = f"{_compact(forward.behind)} behind" if forward.behind else ""
        if forward.down_s is not None:
            text = f"fwd down {span(forward.down_s)}"
            # The outage is the news; the backlog drains once it ends.
            return [(f"{text}, {backlog}" if backlog and fit_in == "terse" else text, down)]
        if forward.error:
            return [("fwd failing: " + clip(forward.error, _TERSE_ERROR), down)]
        return [("fwd ", label), (backlog or forward.describe(), value)]

    @staticmethod
    def _pack(chips: list[Chip], width: int) -> list[Text]:
        """Greedy line packing: a chip goes on the current line if it fits, else on a new one."""
        lines: list[Text] = []
        current = Text(no_wrap=True)
        for chip in chips:
            size = sum(cell_len(text) for text, _ in chip)
            needed = size if not current else size + len(_GAP)
            if current and current.cell_len + needed > width:
                lines.append(current)
                current = Text(no_wrap=True)
            if current:
                current.append(_GAP)
            room = width - current.cell_len
            for text, style in chip:
                piece = clip(text, room)
                current.append(piece, style)
                room -= cell_len(piece)
                if room <= 0:
                    break
        if current:
            lines.append(current)
        return lines


def _compact(count: int) -> str:
    """A count in at most five cells: `1,204`, `12k`, `1.2M`."""
    if count < 10_000:
        return f"{count:,}"
    if count < 1_000_000:
        return f"{count // 1000}k"
    return f"{count / 1_000_000:.1f}M"
