"""The M/M/c queue in closed form (Erlang C): what a simulation of c identical servers fed by
Poisson arrivals with exponential service must reproduce.

With arrival rate λ, service rate μ per server and c servers, the offered load is a = λ/μ
(erlangs) and the utilisation ρ = a/c < 1. Erlang's C formula gives the probability that an
arrival has to wait; the mean wait in the queue follows as Wq = C(c, a) / (cμ − λ), and
Little's law gives the rest (Lq = λ·Wq, W = Wq + 1/μ, L = λ·W).

The probability is computed through Erlang B's recursion (B₀ = 1, Bₖ = a·Bₖ₋₁ / (k + a·Bₖ₋₁),
C = c·B꜀ / (c − a·(1 − B꜀))), which neither overflows nor loses precision for hundreds of
servers, where the textbook sum of aᵏ/k! does.

Examples
--------
Anderson, Sweeney & Williams's Burger Dome with two servers: 0.75 arrivals and 1 service per
server per minute.

>>> q = mmc(arrival_rate=0.75, service_rate=1.0, servers=2)
>>> round(q.probability_of_waiting, 4), round(q.mean_queue, 4), round(q.mean_wait, 4)
(0.2045, 0.1227, 0.1636)
>>> round(erlang_c(1, 0.5), 6)  # one server: an arrival waits whenever the server is busy
0.5
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from vein2vein.domain.errors import InvalidInput

__all__ = ["MMc", "erlang_c", "mmc"]


def erlang_c(servers: int, offered_load: float) -> float:
    """The probability that an arrival waits in an M/M/c queue (Erlang C).

    Parameters
    ----------
    servers : int
        c, the number of identical servers (1 or more).
    offered_load : float
        a = λ/μ in erlangs; must be below ``servers`` for the queue to be stable.

    Returns
    -------
    float
        C(c, a), between 0 and 1.

    Raises
    ------
    InvalidInput
        When ``servers`` is below 1, the load is negative, or the queue would grow without
        end (a ≥ c).
    """
    if not isinstance(servers, int) or isinstance(servers, bool) or servers < 1:
        raise InvalidInput(f"erlang c: servers {servers!r} must be a whole number ≥ 1")
    if not math.isfinite(offered_load) or offered_load < 0:
        raise InvalidInput(f"erlang c: offered load {offered_load!r} must be ≥ 0")
    if offered_load >= servers:
        raise InvalidInput(
            f"erlang c: offered load {offered_load:g} erlangs on {servers} server(s) is not "
            "stable (the load must be below the number of servers)"
        )
    if offered_load == 0:
        return 0.0
    blocking = 1.0
    for k in range(1, servers + 1):
        blocking = offered_load * blocking / (k + offered_load * blocking)
    return servers * blocking / (servers - offered_load * (1 - blocking))


@dataclass(frozen=True, slots=True)
class MMc:
    """Steady-state figures of an M/M/c queue, in the time unit of the rates given.

    Attributes
    ----------
    utilisation : float
        ρ = λ/(cμ), the fraction of time a server is busy.
    probability_of_waiting : float
        C(c, a), Erlang C.
    mean_wait : float
        Wq, the mean time an arrival waits before its service starts.
    mean_queue : float
        Lq = λ·Wq, the mean number waiting.
    mean_time_in_system : float
        W = Wq + 1/μ.
    mean_in_system : float
        L = λ·W.
    """

    utilisation: float
    probability_of_waiting: float
    mean_wait: float
    mean_queue: float
    mean_time_in_system: float
    mean_in_system: float

    def as_json(self) -> dict[str, float]:
        return {
            "utilisation": self.utilisation,
            "probability_of_waiting": self.probability_of_waiting,
            "mean_wait": self.mean_wait,
            "mean_queue": self.mean_queue,
            "mean_time_in_system": self.mean_time_in_system,
            "mean_in_system": self.mean_in_system,
        }


def mmc(*, arrival_rate: float, service_rate: float, servers: int) -> MMc:
    """The M/M/c queue with Poisson arrivals at ``arrival_rate`` (λ), exponential service at
    ``service_rate`` (μ) per server, and ``servers`` (c) servers, in steady state.

    Both rates are per the same unit of time; the times returned are in that unit.

    Raises
    ------
    InvalidInput
        When a rate is not positive, or λ ≥ cμ (no steady state).
    """
    if not (math.isfinite(arrival_rate) and arrival_rate > 0):
        raise InvalidInput(f"m/m/c: arrival rate {arrival_rate!r} must be > 0")
    if not (math.isfinite(service_rate) and service_rate > 0):
        raise InvalidInput(f"m/m/c: service rate {service_rate!r} must be > 0")
    load = arrival_rate / service_rate
    waiting = erlang_c(servers, load)
    wq = waiting / (servers * service_rate - arrival_rate)
    w = wq + 1 / service_rate
    return MMc(
        utilisation=load / servers,
        probability_of_waiting=waiting,
        mean_wait=wq,
        mean_queue=arrival_rate * wq,
        mean_time_in_system=w,
        mean_in_system=arrival_rate * w,
    )
