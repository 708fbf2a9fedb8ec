"""The simulated floor: how one camera's worker behaves over a shift, and the lines it sends.

Everything a camera sends during shift block `k` is drawn from one random stream seeded by
(fleet seed, worker id, k), and each block starts from the same situation (the shift begins,
nobody is there yet). So any stretch of simulated time can be regenerated exactly, whatever
stretch was asked for before: this is what makes the simulator deterministic by seed and
independent of how callers chunk time. Pure: no I/O, no clock, no asyncio.

The behaviour, per worker and shift block of length L:

- absent until an arrival a few minutes after the shift start, absent again for the last few
  minutes (leaving), absent during two short breaks and a lunch at fixed fractions of the shift;
- in between, a continuous-time Markov chain over working / idle / absent (a short walk away)
  with exponential dwell times of several minutes, started in its stationary distribution so the
  expected share of time in each state is known exactly (`FleetConfig.expected_shares`);
- occasional station changes when the worker starts working again;
- `product_count` events while working, a Poisson process at the worker's own rate;
- the camera repeats the current state every `heartbeat_s` (far below max_gap), except while
  it is dark; when it comes back it reports the state at once;
- confidence around the camera's own mean, with occasional dips, and model-wide drift episodes
  for the newer model version, so the drift views have something to show;
- a fraction of lines re-sent later (duplicates, sometimes spelled differently) and a fraction
  sent late (out of order). No line is sent after the end of its own block (a delay that would
  cross it is dropped), which keeps blocks independent of each other.
"""

from __future__ import annotations

import json
import random
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import date, timedelta
from functools import lru_cache
from itertools import pairwise
from statistics import NormalDist
from typing import Final

from factory_tui.models import MAX_ID_LENGTH, RosterEntry

US_PER_S: Final = 1_000_000
US_PER_MS: Final = 1_000
US_PER_DAY: Final = 86_400 * US_PER_S

WORKING: Final = 0
IDLE: Final = 1
ABSENT: Final = 2
STATE_NAMES: Final = ("working", "idle", "absent")

ON_TIME: Final = 0
LATE: Final = 1
DUPLICATE: Final = 2
KIND_NAMES: Final = ("on_time", "late", "duplicate")

# One emitted line: (send time, camera index, block, sequence number in the block, line text,
# kind, event timestamp). The first four fields are unique and give the fleet's send order, so
# lists of items sort correctly as they are (the text is never compared).
Item = tuple[int, int, int, int, str, int, int]


def _check(condition: bool, message: str) -> None:
    if not condition:
        raise ValueError(message)


@dataclass(frozen=True, slots=True)
class FleetConfig:
    """How the simulated floor behaves. The defaults give a believable 8-hour shift."""

    shift_s: float = 8 * 3600.0
    """Length of one shift block; every block starts with an empty floor."""
    shift_anchor_us: int = 6 * 3600 * US_PER_S
    """Any instant at which a shift starts (default 06:00 UTC, so 06:00 / 14:00 / 22:00)."""
    heartbeat_s: float = 60.0
    """A camera repeats the current state this often (must stay below max_gap)."""
    working_mean_s: float = 25 * 60.0
    """Mean length of a working spell between breaks."""
    idle_mean_s: float = 6 * 60.0
    """Mean length of an idle spell."""
    absent_mean_s: float = 5 * 60.0
    """Mean length of an unscheduled absence (a short walk away)."""
    transitions: tuple[tuple[float, float, float], ...] = (
        (0.0, 0.85, 0.15),
        (0.85, 0.0, 0.15),
        (0.80, 0.20, 0.0),
    )
    """Row s: probabilities that a spell in state s (working, idle, absent) is followed by
    working, idle, absent."""
    arrival_spread_s: float = 600.0
    """Workers arrive uniformly within this long after the shift start."""
    departure_spread_s: float = 600.0
    """...and leave uniformly within this long before its end."""
    breaks: tuple[tuple[float, float], ...] = ((0.25, 900.0), (0.5, 1800.0), (0.75, 900.0))
    """Scheduled absences: (centre as a fraction of the shift, mean duration in seconds)."""
    break_jitter_s: float = 600.0
    """A break's centre moves by up to this much either way; its length by +-15 %."""
    station_change_chance: float = 0.08
    """Chance that a worker moves to another station when starting a working spell."""
    units_per_hour: float = 30.0
    """Mean production rate while working, over all workers."""
    units_spread: float = 0.2
    """Relative standard deviation of the per-worker rate around `units_per_hour`."""
    confidence_range: tuple[float, float] = (0.86, 0.95)
    """A camera's mean confidence is drawn uniformly from this range."""
    confidence_sd: float = 0.02
    """Event-to-event noise around the camera's mean."""
    dip_chance: float = 0.02
    """Chance that one event's confidence dips to 0.3-0.6 (glare, occlusion)."""
    model_version: str = "yolo-v8.2"
    """Model most cameras run."""
    new_model_version: str = "yolo-v9.0"
    """Model a share of cameras run."""
    new_model_share: float = 0.25
    """Share of cameras on `new_model_version`."""
    drift_chance: float = 0.5
    """Chance per shift block that the new model has a drift episode (confidence drops)."""
    drift_drop: float = 0.15
    """How far the new model's mean confidence drops during an episode."""
    drift_s: tuple[float, float] = (1200.0, 2400.0)
    """Length range of a drift episode."""
    duplicate_rate: float = 0.01
    """Chance that a sent line is sent again later (the same event, maybe spelled differently)."""
    duplicate_delay_s: tuple[float, float] = (1.0, 30.0)
    """How long after the first send a duplicate is sent."""
    late_rate: float = 0.02
    """Chance that a line is sent a while after its timestamp (so it can arrive after lines with
    later timestamps)."""
    late_delay_s: tuple[float, float] = (5.0, 120.0)
    """How long after its timestamp a late line is sent."""
    dark_per_hour: float = 0.05
    """Rate at which a camera goes dark (per hour of camera time while it is not dark)."""
    dark_s: tuple[float, float] = (1200.0, 2700.0)
    """Length range of a dark period (above the default max_gap, to exercise it)."""

    def __post_init__(self) -> None:
        _check(self.shift_s >= 60, "shift_s must be at least 60 seconds")
        _check(0 < self.heartbeat_s <= self.shift_s, "heartbeat_s must be in (0, shift_s]")
        for name in ("working_mean_s", "idle_mean_s", "absent_mean_s"):
            _check(getattr(self, name) > 0, f"{name} must be positive")
        _check(len(self.transitions) == 3, "transitions must have 3 rows")
        for row in self.transitions:
            _check(len(row) == 3 and all(p >= 0 for p in row), "transition rows need 3 p >= 0")
            _check(abs(sum(row) - 1.0) < 1e-9, "every transition row must sum to 1")
        for name in (
            "station_change_chance",
            "dip_chance",
            "new_model_share",
            "drift_chance",
            "duplicate_rate",
            "late_rate",
            "units_spread",
        ):
            _check(0.0 <= getattr(self, name) <= 1.0, f"{name} must be between 0 and 1")
        for name in ("duplicate_delay_s", "late_delay_s", "dark_s", "drift_s"):
            low, high = getattr(self, name)
            _check(0 <= low <= high, f"{name} must be (low, high) with 0 <= low <= high")
        _check(self.late_delay_s[0] > 0, "late_delay_s must start above 0")
        _check(self.duplicate_delay_s[0] > 0, "duplicate_delay_s must start above 0")
        _check(self.dark_s[0] > 0, "dark_s must start above 0")
        low, high = self.confidence_range
        _check(0 < low <= high <= 1, "confidence_range must be within (0, 1]")
        _check(self.units_per_hour >= 0, "units_per_hour must be 0 or more")
        _check(self.dark_per_hour >= 0, "dark_per_hour must be 0 or more")
        _check(0 <= self.drift_drop < 1, "drift_drop must be in [0, 1)")
        for name in ("model_version", "new_model_version"):
            value = getattr(self, name)
            _check(0 < len(value) <= MAX_ID_LENGTH, f"{name} must be 1-64 characters")
        self._check_breaks()

    def _check_breaks(self) -> None:
        # Scheduled absences must not overlap whatever the jitter draws, so the expected share
        # of scheduled absence is exactly the sum of the mean durations.
        previous_end = self.arrival_spread_s
        for fraction, duration in self.breaks:
            _check(0 < fraction < 1 and duration > 0, "breaks need 0 < fraction < 1, duration > 0")
            centre = fraction * self.shift_s
            earliest = centre - self.break_jitter_s - 0.575 * duration
            _check(
                earliest > previous_end,
                f"break at {fraction:g} of the shift can overlap the one before or the arrival",
            )
            previous_end = centre + self.break_jitter_s + 0.575 * duration
        _check(
            previous_end < self.shift_s - self.departure_spread_s,
            "the last break can overlap the departure at the end of the shift",
        )

    @property
    def shift_us(self) -> int:
        """Block length in microseconds (whole milliseconds)."""
        return round(self.shift_s * 1000) * US_PER_MS

    def stationary(self) -> tuple[float, float, float]:
        """Long-run share of time in working / idle / absent between scheduled breaks."""
        return _stationary(
            self.transitions, (self.working_mean_s, self.idle_mean_s, self.absent_mean_s)
        )

    def scheduled_absence_s(self) -> float:
        """Expected seconds per shift of arrival, departure and breaks."""
        return (
            self.arrival_spread_s / 2
            + self.departure_spread_s / 2
            + sum(duration for _, duration in self.breaks)
        )

    def expected_shares(self) -> dict[str, float]:
        """Expected share of a shift each worker spends working, idle and absent."""
        open_s = self.shift_s - self.scheduled_absence_s()
        pi = self.stationary()
        return {
            "working": pi[WORKING] * open_s / self.shift_s,
            "idle": pi[IDLE] * open_s / self.shift_s,
            "absent": (pi[ABSENT] * open_s + self.scheduled_absence_s()) / self.shift_s,
        }


@lru_cache(maxsize=64)
def _stationary(
    transitions: tuple[tuple[float, float, float], ...], means: tuple[float, float, float]
) -> tuple[float, float, float]:
    # Embedded jump chain: iterate the lazy chain (P + I) / 2, which has the same stationary
    # distribution and is aperiodic, so plain power iteration converges.
    nu = [1 / 3, 1 / 3, 1 / 3]
    for _ in range(2000):
        nu = [
            0.5 * nu[j] + 0.5 * sum(nu[i] * transitions[i][j] for i in range(3)) for j in range(3)
        ]
    # Time shares weight each state's visits by its mean dwell time.
    weights = [nu[s] * means[s] for s in range(3)]
    total = sum(weights)
    return (weights[0] / total, weights[1] / total, weights[2] / total)


@dataclass(frozen=True, slots=True)
class CameraProfile:
    """One camera and the worker it watches: what stays the same from shift to shift."""

    index: int
    worker_id: str
    camera_id: str
    home_station: int
    """Index into the fleet's workstations where the worker starts each shift."""
    model_version: str
    confidence_mean: float
    units_per_hour: float
    worker_json: str = field(repr=False, compare=False, default="")
    """The worker id as a JSON string, encoded once."""
    line_tail: str = field(repr=False, compare=False, default="")
    """The fixed end of every line of this camera (model_version, camera_id), encoded once."""


def camera_id_for(index: int, worker_id: str) -> str:
    """The camera id of a worker's camera: `cam-<worker id>` (or `cam-<n>` for long ids)."""
    text = f"cam-{worker_id}"
    return text if len(text) <= MAX_ID_LENGTH else f"cam-{index + 1}"


def make_profile(
    seed: int, index: int, worker: RosterEntry, n_stations: int, config: FleetConfig
) -> CameraProfile:
    """Draw a camera's lasting traits; keyed by worker id so other workers do not shift them."""
    rng = random.Random(f"{seed}/profile/{worker.id}")
    new_model = rng.random() < config.new_model_share
    low, high = config.confidence_range
    confidence = rng.uniform(low, high)
    if new_model:
        # The newer model is a little more sure of itself: drift views then show two levels.
        confidence = min(0.99, confidence + 0.03)
    rate = max(1.0, rng.gauss(config.units_per_hour, config.units_spread * config.units_per_hour))
    if config.units_per_hour == 0:
        rate = 0.0
    model = config.new_model_version if new_model else config.model_version
    camera_id = camera_id_for(index, worker.id)
    tail = f',"model_version":{json.dumps(model)},"camera_id":{json.dumps(camera_id)}}}'
    return CameraProfile(
        index=index,
        worker_id=worker.id,
        camera_id=camera_id,
        home_station=index % n_stations,
        model_version=model,
        confidence_mean=confidence,
        units_per_hour=rate,
        worker_json=json.dumps(worker.id),
        line_tail=tail,
    )


_MINUTE_PREFIXES: dict[int, str] = {}
_US_PER_MINUTE: Final = 60 * US_PER_S


def _minute_prefix(minute: int) -> str:
    """`YYYY-MM-DDTHH:MM:` of a minute since the epoch (memoised: most lines share minutes)."""
    text = _MINUTE_PREFIXES.get(minute)
    if text is None:
        if len(_MINUTE_PREFIXES) > 100_000:
            _MINUTE_PREFIXES.clear()
        day, of_day = divmod(minute, 1440)
        hours, minutes = divmod(of_day, 60)
        text = f"{(date(1970, 1, 1) + timedelta(days=day)).isoformat()}T{hours:02d}:{minutes:02d}:"
        _MINUTE_PREFIXES[minute] = text
    return text


# "SS.mmmZ" for every millisecond of a minute, and the text of every confidence in thousandths:
# table look-ups instead of formatting on the hot path (a million lines in a few seconds).
_SECOND_MS: Final = tuple(f"{ms // 1000:02d}.{ms % 1000:03d}Z" for ms in range(60_000))
_THOUSANDTHS: Final = tuple(repr(k / 1000) for k in range(1001))
# Standard normal quantiles at 4096 evenly spaced probabilities: a draw is one getrandbits(12).
_NORMAL_BITS: Final = 12
_NORMAL: Final = tuple(
    NormalDist().inv_cdf((i + 0.5) / (1 << _NORMAL_BITS)) for i in range(1 << _NORMAL_BITS)
)


def format_timestamp(ts_us: int) -> str:
    """ISO 8601 UTC with milliseconds and `Z`, e.g. `2025-03-04T06:00:01.250Z` (fast path)."""
    minute, of_minute = divmod(ts_us, _US_PER_MINUTE)
    return _minute_prefix(minute) + _SECOND_MS[of_minute // US_PER_MS]


def respell(line: str, variant: int) -> str:
    """The same event spelled differently: 0 as is, 1 `+00:00` for `Z`, 2 keys reversed."""
    if variant == 1:
        return line.replace('Z",', '+00:00",', 1)
    if variant == 2:
        data = json.loads(line)
        return json.dumps(dict(reversed(list(data.items()))), separators=(", ", ": "))
    return line


def _ms(seconds: float) -> int:
    """Seconds as whole milliseconds in microseconds (cameras stamp to the millisecond)."""
    return int(seconds * 1000) * US_PER_MS


def _plan_schedule(rng: random.Random, config: FleetConfig) -> list[tuple[int, int]]:
    """Scheduled absences of one shift as block-relative [start, end) microseconds, in order."""
    length = config.shift_us
    absences = [(0, _ms(rng.uniform(0, config.arrival_spread_s)))]
    for fraction, duration in config.breaks:
        centre = fraction * config.shift_s + rng.uniform(
            -config.break_jitter_s, config.break_jitter_s
        )
        span = duration * rng.uniform(0.85, 1.15)
        absences.append((_ms(centre - span / 2), _ms(centre + span / 2)))
    absences.append((length - _ms(rng.uniform(0, config.departure_spread_s)), length))
    return absences


def _plan_dark(rng: random.Random, config: FleetConfig) -> list[tuple[int, int]]:
    """Dark periods of one camera in one shift (a renewal process), block-relative."""
    darks: list[tuple[int, int]] = []
    if config.dark_per_hour <= 0:
        return darks
    length = config.shift_us
    mean_gap_s = 3600.0 / config.dark_per_hour
    t = _ms(rng.expovariate(1.0 / mean_gap_s))
    while t < length:
        end = min(length, t + _ms(rng.uniform(*config.dark_s)))
        darks.append((t, end))
        t = end + _ms(rng.expovariate(1.0 / mean_gap_s)) + US_PER_MS
    return darks


def plan_drift(seed: int, model: str, block: int, config: FleetConfig) -> tuple[int, int] | None:
    """The model-wide drift episode of one shift, block-relative, or None.

    Drawn from its own stream keyed by the model, so every camera on that model agrees.
    """
    if model != config.new_model_version or config.drift_drop == 0:
        return None
    rng = random.Random(f"{seed}/drift/{model}/{block}")
    if rng.random() >= config.drift_chance:
        return None
    duration = _ms(rng.uniform(*config.drift_s))
    start = _ms(rng.uniform(0, max(0.0, config.shift_s - duration / US_PER_S)))
    return start, start + duration


def plan_segments(
    rng: random.Random,
    profile: CameraProfile,
    n_stations: int,
    config: FleetConfig,
    schedule: Sequence[tuple[int, int]],
) -> list[tuple[int, int, int, int]]:
    """The worker's true states over one shift: (start, end, state, station) covering it."""
    segments: list[tuple[int, int, int, int]] = []
    station = profile.home_station
    pi = config.stationary()
    means = (config.working_mean_s, config.idle_mean_s, config.absent_mean_s)

    def add(start: int, end: int, state: int) -> None:
        if end <= start:
            return
        if segments and segments[-1][2] == state and segments[-1][3] == station:
            # The camera sees no change: one longer segment, heartbeats carry on regularly.
            segments[-1] = (segments[-1][0], end, state, station)
        else:
            segments.append((start, end, state, station))

    add(schedule[0][0], schedule[0][1], ABSENT)
    for (_, open_start), (open_end, absence_end) in pairwise(schedule):
        # Between two scheduled absences the chain starts in its stationary distribution, so the
        # state at every instant has the stationary law and expected shares are exact.
        t = open_start
        state = _draw(rng, pi)
        while t < open_end:
            dwell = _ms(rng.expovariate(1.0 / means[state])) + US_PER_MS
            add(t, min(open_end, t + dwell), state)
            t += dwell
            if t >= open_end:
                break
            following = _draw(rng, config.transitions[state])
            if (
                following == WORKING
                and n_stations > 1
                and rng.random() < config.station_change_chance
            ):
                station = (station + 1 + rng.randrange(n_stations - 1)) % n_stations
            state = following
        add(open_end, absence_end, ABSENT)
    return segments


def _dark_until(darks: Sequence[tuple[int, int]], t: int) -> int:
    """The end of the dark period covering t, or -1 when the camera sees t (few periods)."""
    for begin, end in darks:
        if begin <= t < end:
            return end
    return -1


def _draw(rng: random.Random, weights: Sequence[float]) -> int:
    pick = rng.random()
    for index, weight in enumerate(weights):
        pick -= weight
        if pick < 0:
            return index
    # Rounding can leave pick a hair above 0: fall back on the last state with weight.
    return max(i for i, w in enumerate(weights) if w > 0)


def block_batches(
    seed: int,
    profile: CameraProfile,
    station_json: Sequence[str],
    config: FleetConfig,
    block: int,
) -> Iterator[tuple[list[Item], bool]]:
    """Every line one camera sends in shift block `block`: one batch per state segment.

    Yields (items, has_delayed): items in timestamp order of their events; `has_delayed` says
    whether any is sent late or is a duplicate (sent after lines with later timestamps), so the
    caller can take a batch without one in one piece.
    """
    rng = random.Random(f"{seed}/{profile.worker_id}/{block}")
    origin = config.shift_anchor_us + block * config.shift_us
    block_end = origin + config.shift_us
    schedule = _plan_schedule(rng, config)
    darks = _plan_dark(rng, config)
    segments = plan_segments(rng, profile, len(station_json), config, schedule)
    drift = plan_drift(seed, profile.model_version, block, config)
    heartbeat = _ms(config.heartbeat_s)
    product_mean_us = 3600.0 * US_PER_S / profile.units_per_hour if profile.units_per_hour else 0
    late_rate, dup_rate, dip_chance = config.late_rate, config.duplicate_rate, config.dip_chance
    late_low, late_high = config.late_delay_s
    dup_low, dup_high = config.duplicate_delay_s
    mean_milli = profile.confidence_mean * 1000
    sd_milli = config.confidence_sd * 1000
    drift_milli = config.drift_drop * 1000
    normal, normal_bits, getrandbits = _NORMAL, _NORMAL_BITS, rng.getrandbits
    prefixes, second_ms, thousandths = _MINUTE_PREFIXES, _SECOND_MS, _THOUSANDTHS
    minute_us = _US_PER_MINUTE
    camera = profile.index
    head = f'","worker_id":{profile.worker_json},"workstation_id":'
    tail = profile.line_tail
    uniform, random_ = rng.uniform, rng.random
    seq = 0
    for start, end, state, station in segments:
        # Instants the camera reports: (time, 0) for the state, (time, 1) for a product.
        instants: list[tuple[int, int]] = []
        t = start
        while t < end:
            resume = _dark_until(darks, t)
            if resume >= 0:
                # Dark: nothing is sent; on coming back the camera reports the state at once.
                t = resume
                continue
            instants.append((t, 0))
            t += heartbeat
        if state == WORKING and product_mean_us:
            p = start + int(rng.expovariate(1.0) * product_mean_us)
            while p < end:
                instant = p - p % US_PER_MS
                if _dark_until(darks, instant) < 0:
                    instants.append((instant, 1))
                p += int(rng.expovariate(1.0) * product_mean_us) + 1
            instants.sort()
        # The fixed middle of this segment's lines, encoded once per segment.
        middles = (
            f'{head}{station_json[station]},"event_type":"{STATE_NAMES[state]}","confidence":',
            f'{head}{station_json[station]},"event_type":"product_count","confidence":',
        )
        endings = (tail, ',"count":1' + tail)
        batch: list[Item] = []
        has_delayed = False
        for moment, is_product in instants:
            ts = origin + moment
            # Confidence in thousandths (cameras report three decimals).
            if random_() < dip_chance:
                milli = 300 + int(random_() * 300)
            else:
                mean = mean_milli
                if drift is not None and drift[0] <= moment < drift[1]:
                    mean -= drift_milli
                milli = int(mean + sd_milli * normal[getrandbits(normal_bits)] + 0.5)
                milli = 1000 if milli > 1000 else 10 if milli < 10 else milli
            minute, of_minute = divmod(ts, minute_us)
            stamp = prefixes.get(minute) or _minute_prefix(minute)
            line = (
                f'{{"timestamp":"{stamp}{second_ms[of_minute // US_PER_MS]}'
                f"{middles[is_product]}{thousandths[milli]}{endings[is_product]}"
            )
            # Nothing is sent after the end of its shift block: blocks stay independent, so any
            # span can be generated starting from the block it begins in.
            send, kind = ts, ON_TIME
            if random_() < late_rate:
                late_send = ts + _ms(uniform(late_low, late_high))
                if late_send < block_end:
                    send, kind = late_send, LATE
                    has_delayed = True
            batch.append((send, camera, block, seq, line, kind, ts))
            seq += 1
            if random_() < dup_rate:
                variant = rng.randrange(3)
                again_send = send + _ms(uniform(dup_low, dup_high))
                if again_send < block_end:
                    again = respell(line, variant)
                    batch.append((again_send, camera, block, seq, again, DUPLICATE, ts))
                    seq += 1
                    has_delayed = True
        if batch:
            yield batch, has_delayed
