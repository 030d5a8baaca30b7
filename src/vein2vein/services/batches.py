"""Write side: one use case per function, each in one unit of work with its audit records."""

from __future__ import annotations

from dataclasses import dataclass, replace

from vein2vein.domain.batch import (
    TRANSITIONS,
    Action,
    Batch,
    BatchState,
    default_handoff_parties,
)
from vein2vein.domain.custody import Handoff
from vein2vein.domain.errors import (
    ConcurrencyConflict,
    IdentityMismatch,
    InvalidInput,
    PermissionDenied,
)
from vein2vein.domain.events import Event
from vein2vein.domain.identity import Din, IdentifierIssuer, parse_scan
from vein2vein.domain.patient import Patient, Site, SiteKind, TherapyOrder, validate_code
from vein2vein.domain.people import Actor
from vein2vein.domain.permissions import DISPOSITIONS, check_independent, rule_for
from vein2vein.services.auth import Identity, Signing, recording_failures, signing_intent
from vein2vein.services.authorise import (
    authorise,
    batch_sites,
    check_permission,
    record_denial,
)
from vein2vein.services.records import bind_process, check_record_complete
from vein2vein.services.release import QC_GATED, qc_gate
from vein2vein.store import monitoring as equipment_uses
from vein2vein.store.queries import batch_makers
from vein2vein.store.uow import UnitOfWork

__all__ = [
    "HandoffDetails",
    "OrderPlaced",
    "ScanResult",
    "perform_transition",
    "place_order",
    "record_mismatch",
    "register_site",
    "scan_identity",
]


def register_site(
    uow: UnitOfWork, *, code: str, name: str, kind: str, fin: str | None, by: Actor
) -> Site:
    """Add a site to the network (treatment centre, collection centre, plant, point of care)."""
    try:
        site_kind = SiteKind(kind)
    except ValueError:
        choices = ", ".join(k.value for k in SiteKind)
        raise InvalidInput(f"site kind {kind!r}: expected one of {choices}") from None
    site = Site(code, name, site_kind, fin or None)
    with authorise(uow, by, "site.register", entity=("site", site.code)):
        uow.sites.add(site)
        uow.record(
            Event(
                "SiteRegistered",
                by.user_id,
                uow.clock.now(),
                "site",
                site.code,
                new={"name": site.name, "kind": site.kind.value, "fin": site.fin},
            )
        )
        uow.commit()
    return site


@dataclass(frozen=True, slots=True)
class OrderPlaced:
    reference: str
    lot: str
    coi: str


def place_order(
    uow: UnitOfWork,
    *,
    pseudonym: str,
    year_of_birth: int,
    weight_kg: float,
    product: str,
    treatment_centre: str,
    manufacturing_site: str,
    by: Actor,
    reference: str | None = None,
) -> OrderPlaced:
    """A treatment centre orders a therapy for a pseudonymous patient.

    Registers the patient when new (an existing pseudonym must match its year of birth; the
    weight is updated for dosing), issues the order's chain-of-identity identifier (ISBT 128
    DS040) under the manufacturing site's FIN, and opens the batch in ORDERED.
    """
    patient = Patient(pseudonym, year_of_birth, weight_kg)
    validate_code("product", product)
    if reference is not None:
        validate_code("order reference", reference)
    actor = by.user_id
    with authorise(uow, by, "order.create", entity=("order", reference or pseudonym)):
        now = uow.clock.now()
        patient.check_born_by(now)
        centre = uow.sites.get(treatment_centre)
        plant = uow.sites.get(manufacturing_site)
        check_permission(by, rule_for("order.create"), [centre.code])
        if centre.kind is not SiteKind.TREATMENT_CENTRE:
            raise InvalidInput(
                f"treatment_centre {centre.code}: is a {centre.kind.value}, not a treatment centre"
            )
        if not plant.kind.manufactures:
            raise InvalidInput(
                f"manufacturing_site {plant.code}: is a {plant.kind.value}, which does not "
                "manufacture"
            )
        if plant.fin is None:
            raise InvalidInput(
                f"manufacturing_site {plant.code}: has no ISBT 128 FIN to issue the chain of "
                "identity under (FINs are assigned by ICCBBA; set the site's FIN)"
            )
        known = uow.patients.find(pseudonym)
        if known is None:
            uow.patients.add(patient, now)
            uow.record(
                Event(
                    "PatientRegistered",
                    actor,
                    now,
                    "patient",
                    pseudonym,
                    new={"year_of_birth": year_of_birth, "weight_kg": weight_kg},
                )
            )
        elif known.year_of_birth != year_of_birth:
            raise InvalidInput(
                f"patient {pseudonym}: is registered with year of birth {known.year_of_birth}, "
                f"not {year_of_birth}; check the pseudonym"
            )
        elif known.weight_kg != weight_kg:
            # The dose of this order is computed for today's weight (bound at the start of
            # processing); the old weight stays in the audit trail.
            uow.patients.set_weight(pseudonym, weight_kg)
            uow.record(
                Event(
                    "PatientWeightUpdated",
                    actor,
                    now,
                    "patient",
                    pseudonym,
                    new={"weight_kg": weight_kg},
                    old={"weight_kg": known.weight_kg},
                    reason="weighed for a new order",
                )
            )
        yy = now.year % 100
        if reference is None:
            reference = f"ORD-{now.year}-{uow.sequences.next_sequence('ORD', 'ORDER', yy):06d}"
        lot = f"{plant.code}-{now.year}-{uow.sequences.next_sequence('LOT', plant.code, yy):05d}"
        coi = IdentifierIssuer(uow.sequences).issue_coi(plant.fin, now.year)
        order = TherapyOrder(reference, pseudonym, product, centre.code, plant.code, now, actor)
        uow.orders.add(order)
        batch = Batch(
            lot=lot,
            coi=coi,
            order_ref=reference,
            patient_pseudonym=pseudonym,
            product=product,
            manufacturing_site=plant.code,
            treatment_centre=centre.code,
            state=BatchState.ORDERED,
            state_since=now,
            created_at=now,
        )
        uow.batches.add(batch)
        uow.record(
            Event(
                "TherapyOrdered",
                actor,
                now,
                "batch",
                lot,
                new={
                    "order": reference,
                    "patient": pseudonym,
                    "weight_kg": weight_kg,
                    "product": product,
                    "treatment_centre": centre.code,
                    "manufacturing_site": plant.code,
                    "coi": coi.value,
                    "state": BatchState.ORDERED.value,
                    "version": batch.version,
                },
            )
        )
        uow.commit()
    return OrderPlaced(reference, lot, coi.value)


@dataclass(frozen=True, slots=True)
class HandoffDetails:
    """What a person may say at a hand-off; anything left out takes the batch's default."""

    from_party: str | None = None
    to_party: str | None = None
    location: str | None = None
    temperature_c: float | None = None


def perform_transition(
    uow: UnitOfWork,
    lot: str,
    action: Action | str,
    *,
    by: Identity,
    reason: str | None = None,
    scan: str | None = None,
    handoff: HandoffDetails | None = None,
    expected_version: int | None = None,
    signing: Signing | None = None,
    process: str | None = None,
    exception: str | None = None,
) -> Batch:
    """Move batch ``lot`` by ``action`` (one row of the transition table), as ``by``.

    The permission table (domain/permissions.py) decides who may, at which of the batch's
    sites; a disposition cannot be made by one who made the batch; where the table asks for
    an electronic signature, ``signing`` must carry the person's password (and user id at
    the first signature of a session), checked in the same transaction as the change.
    ``expected_version`` is the version the person saw; if the batch has moved on, the
    request is refused with :class:`ConcurrencyConflict` rather than applied to a batch the
    person has not seen. A scan of another identity raises :class:`IdentityMismatch`: the
    transition is refused and the attempt is recorded as ``IdentityMismatchDetected``.
    A refusal for want of permission is recorded as ``PermissionDenied``, a wrong password
    as ``SignatureRefused``.

    The batch record rules (services/records.py): start-processing binds the batch to the
    effective MBR of ``process`` (needed when more than one is effective for its product);
    complete-processing needs a complete record.

    The QC gate (services/qc.py): acceptance needs the apheresis's verified results within
    the acceptance criteria — or, out of them, QA's ``exception`` (its reason), signed with
    the acceptance; every form of release needs the release check to allow it (results,
    OOS investigations, out-of-trend reviews, open major/critical deviations, the record
    review), a conditional release only the 14-day culture pending, a release out of
    specification the treating physician's signed request.
    """
    try:
        action = Action(action)
    except ValueError:
        choices = ", ".join(a.value for a in Action)
        raise InvalidInput(f"action {action!r}: expected one of {choices}") from None
    rule = TRANSITIONS[action]
    permission = rule_for(action)
    actor = by.actor.user_id
    try:
        with recording_failures(uow), uow:
            now = uow.clock.now()
            batch = uow.batches.get(lot, for_update=True)
            check_permission(by.actor, permission, batch_sites(permission.where, batch))
            if action in DISPOSITIONS:
                check_independent(by.actor, action, batch_makers(uow.connection, lot), lot)
            if expected_version is not None and batch.version != expected_version:
                raise ConcurrencyConflict(
                    f"batch {lot} was changed by someone else (you saw version "
                    f"{expected_version}, it is now at version {batch.version}); reload and "
                    "try again"
                )
            hand = None
            if rule.handoff:
                details = handoff or HandoffDetails()
                default_from, default_to, default_where = default_handoff_parties(action, batch)
                hand = Handoff(
                    details.from_party or default_from,
                    details.to_party or default_to,
                    details.location or default_where,
                    details.temperature_c,
                )
            din = None
            if action is Action.COLLECT:
                centre = uow.sites.get(batch.treatment_centre)
                if centre.fin is None:
                    raise InvalidInput(
                        f"treatment_centre {centre.code}: has no ISBT 128 FIN to issue the "
                        "collection's DIN under (FINs are assigned by ICCBBA)"
                    )
                din = IdentifierIssuer(uow.sequences).issue_din(centre.fin, now.year)
            if action is not Action.START_PROCESSING and process is not None:
                raise InvalidInput(f"a process is chosen only to start processing, not {action}")
            if action in (Action.START_PROCESSING, Action.COMPLETE_PROCESSING, *QC_GATED):
                batch.check_allowed(action)  # a refusal by state comes first
            if action is Action.COMPLETE_PROCESSING:
                check_record_complete(uow, lot)
            if exception is not None and action is not Action.ACCEPT:
                raise InvalidInput(
                    f"an exception is given only to accept starting material, not to {action}"
                )
            after_qc = None
            if action in QC_GATED:
                after_qc = qc_gate(uow, batch, action, actor=actor, exception=exception)
            intent = None
            if permission.signature is not None:
                batch.check_allowed(action)  # a refusal by state before asking to sign
                intent = signing_intent(
                    uow,
                    by,
                    signing,
                    permission.signature,
                    f"{action.value} of batch {lot}",
                    entity=("batch", lot),
                )
            batch.perform(action, by=actor, at=now, reason=reason, scan=scan, handoff=hand, din=din)
            if action is Action.START_PROCESSING:
                bind_process(uow, batch, process, actor)
            if action in (Action.COMPLETE_PROCESSING, Action.TERMINATE):
                # processing is over: so are its steps on equipment
                equipment_uses.end_uses(uow.connection, lot=lot, at=now, by=actor)
            if after_qc is not None:
                after_qc(now)
            if intent is not None:
                batch.events[:] = [
                    replace(e, signature=intent) if e.name == rule.event else e
                    for e in batch.events
                ]
            uow.commit()
    except PermissionDenied as denied:
        record_denial(uow, by.actor, permission.permission, ("batch", lot), denied.message)
        raise
    except IdentityMismatch as mismatch:
        record_mismatch(uow, lot, action.value, scan or "", actor, str(mismatch))
        raise
    return batch


def record_mismatch(
    uow: UnitOfWork, lot: str, during: str, scanned: str, actor: str, detail: str
) -> None:
    # Its own transaction: the refused transition is rolled back, the attempt is kept.
    with uow:
        batch = uow.batches.get(lot)
        uow.record(
            Event(
                "IdentityMismatchDetected",
                actor,
                uow.clock.now(),
                "batch",
                lot,
                new={
                    "during": during,
                    "scanned": scanned,
                    "expected_coi": batch.coi.value,
                    "expected_din": batch.din.value if batch.din else None,
                    "state": batch.state.value,
                },
                reason=detail,
            )
        )
        uow.commit()


@dataclass(frozen=True, slots=True)
class ScanResult:
    lot: str
    scanned: str
    kind: str
    matches: bool


def scan_identity(
    uow: UnitOfWork, lot: str, scan: str, *, by: Actor, location: str | None = None
) -> ScanResult:
    """Check a scanned label against batch ``lot`` outside any transition (a spot check).

    A match is recorded as ``IdentityVerified``; a mismatch as ``IdentityMismatchDetected``
    and raised as :class:`IdentityMismatch`.
    """
    actor = by.user_id
    scanned = parse_scan(scan)  # an unreadable scan is refused before anything is written
    permission = rule_for("batch.scan")
    with authorise(uow, by, "batch.scan", entity=("batch", lot)):
        batch = uow.batches.get(lot)
        check_permission(by, permission, batch_sites(permission.where, batch))
        try:
            batch.check_scan(scan)
        except IdentityMismatch as mismatch:
            detail = str(mismatch)
        else:
            uow.record(
                Event(
                    "IdentityVerified",
                    actor,
                    uow.clock.now(),
                    "batch",
                    lot,
                    new={"scanned": str(scanned), "location": location, "state": batch.state.value},
                )
            )
            uow.commit()
            kind = "DIN" if isinstance(scanned, Din) else "COI"
            return ScanResult(lot, str(scanned), kind, True)
    record_mismatch(uow, lot, "scan", scan, actor, detail)
    raise IdentityMismatch(detail)
