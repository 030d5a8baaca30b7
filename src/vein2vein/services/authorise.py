"""Permission checks in the services: one table (domain/permissions.py), checked here.

A refusal is itself recorded (``PermissionDenied``, in a transaction of its own, since the
refused one is rolled back), so an inspector can see who tried what.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from typing import Protocol

from vein2vein.domain.errors import PermissionDenied
from vein2vein.domain.events import Event
from vein2vein.domain.people import Actor
from vein2vein.domain.permissions import Rule, Where, rule_for
from vein2vein.store.uow import UnitOfWork

__all__ = [
    "authorise",
    "batch_sites",
    "check_permission",
    "permitted",
    "record_denial",
    "require",
]


def check_permission(actor: Actor, rule: Rule, sites: Iterable[str] = ()) -> None:
    """Raise :class:`PermissionDenied` unless ``actor`` holds a role of ``rule`` and, when
    ``sites`` are given, at least one of them is in the actor's scope."""
    if not rule.allows(actor):
        needed = " or ".join(sorted(r.value for r in rule.roles))
        held = ", ".join(sorted(r.value for r in actor.roles)) or "none"
        raise PermissionDenied(
            f"{actor.user_id} may not {rule.permission}: needs the role {needed} (has {held})"
        )
    wanted = [s for s in sites if s]
    if wanted and not any(actor.may_act_on(s) for s in wanted):
        raise PermissionDenied(
            f"{actor.user_id} may not {rule.permission} at {' or '.join(wanted)}: "
            f"outside their site scope ({actor.scope})"
        )


class _AtSites(Protocol):
    """A batch, or a row of one: where it was ordered and where it is made."""

    @property
    def treatment_centre(self) -> str: ...

    @property
    def manufacturing_site(self) -> str: ...


def batch_sites(where: Where, batch: _AtSites) -> list[str]:
    """The sites of ``batch`` that a person's scope must include for a rule's ``where``."""
    centre, plant = batch.treatment_centre, batch.manufacturing_site
    return {
        Where.ANYWHERE: [],
        Where.CENTRE: [centre],
        Where.PLANT: [plant],
        Where.EITHER: [centre, plant],
    }[where]


def permitted(actor: Actor, rule: Rule, sites: Iterable[str] = ()) -> bool:
    """Whether :func:`check_permission` would let ``actor`` through (to decide what to offer)."""
    try:
        check_permission(actor, rule, sites)
    except PermissionDenied:
        return False
    return True


def require(actor: Actor, permission: str) -> None:
    """Check a permission for reading (nothing is written, so nothing is recorded)."""
    check_permission(actor, rule_for(permission))


def record_denial(
    uow: UnitOfWork, actor: Actor, permission: str, entity: tuple[str, str], why: str
) -> None:
    """Record a refused request in its own transaction."""
    with uow:
        uow.record(
            Event(
                "PermissionDenied",
                actor.user_id,
                uow.clock.now(),
                entity[0],
                entity[1],
                new={"permission": permission, "roles": sorted(r.value for r in actor.roles)},
                reason=why,
            )
        )
        uow.commit()


@contextmanager
def authorise(
    uow: UnitOfWork,
    actor: Actor,
    permission: str,
    *,
    entity: tuple[str, str],
    sites: Iterable[str] = (),
) -> Iterator[UnitOfWork]:
    """``with authorise(uow, actor, "site.register", entity=("site", code)) as uow: ...``

    Opens the unit of work after checking the permission; a :class:`PermissionDenied`
    raised inside (e.g. a site scope checked once the record is loaded) is recorded too.
    """
    rule = rule_for(permission)
    try:
        check_permission(actor, rule, sites)
        with uow:
            yield uow
    except PermissionDenied as denied:
        record_denial(uow, actor, permission, entity, denied.message)
        raise
