"""Who may do what: one table of action → roles, where, and which signature it needs.

The services check every request against :data:`PERMISSIONS` before they change or show
anything (never only the pages or the CLI). Two rules of independence sit beside it: the
person who releases a batch cannot be one who made it, and the verifier of a step cannot
be its performer (21 CFR 211.22, EU GMP Annex 16; the "four eyes" principle).

Examples
--------
>>> from vein2vein.domain.people import ALL_SITES, Actor, Role
>>> qp = Actor("qp.lee", "Dr Lee", frozenset({Role.QP}), ALL_SITES)
>>> rule = PERMISSIONS["batch.release"]
>>> rule.allows(qp), rule.signature
(True, <Meaning.RELEASED: 'released'>)
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from enum import StrEnum

from vein2vein.domain.batch import Action
from vein2vein.domain.errors import PermissionDenied
from vein2vein.domain.people import Actor, Role
from vein2vein.domain.signatures import Meaning

__all__ = [
    "DISPOSITIONS",
    "MAKERS",
    "PERMISSIONS",
    "Rule",
    "Where",
    "check_independent",
    "check_verifier",
    "rule_for",
]


class Where(StrEnum):
    """Which of a batch's sites must be in the person's scope."""

    ANYWHERE = "anywhere"  # not about one batch, or any site will do
    CENTRE = "centre"  # the treatment centre that ordered it
    PLANT = "plant"  # the site that manufactures it
    EITHER = "either"  # the centre or the plant


@dataclass(frozen=True, slots=True)
class Rule:
    """One row of the permission table."""

    permission: str
    roles: frozenset[Role]
    where: Where = Where.ANYWHERE
    signature: Meaning | None = None
    summary: str = ""

    def allows(self, actor: Actor) -> bool:
        return bool(self.roles & actor.roles)


R = Role
_QA = frozenset({R.QA_REVIEWER})
_QA_QP = frozenset({R.QA_REVIEWER, R.QP})
_EVERYONE = frozenset(Role)


def _rule(
    permission: str,
    roles: Iterable[Role],
    where: Where = Where.ANYWHERE,
    signature: Meaning | None = None,
    summary: str = "",
) -> tuple[str, Rule]:
    return permission, Rule(permission, frozenset(roles), where, signature, summary)


def _batch(action: Action) -> str:
    return f"batch.{action.value}"


A = Action
PERMISSIONS: dict[str, Rule] = dict(
    [
        # -- reading: anyone signed in; what they see is not limited by site (yet) --------
        _rule("records.read", _EVERYONE, summary="see batches, custody and the audit trail"),
        # -- the network and people -------------------------------------------------------
        _rule("site.register", {R.ADMINISTRATOR}, summary="register a site"),
        _rule("user.administer", {R.ADMINISTRATOR}, summary="add, change, deactivate users"),
        _rule("security.read", {R.ADMINISTRATOR}, summary="see security alerts"),
        # -- the audit trail ---------------------------------------------------------------
        _rule("audit.verify", {R.QA_REVIEWER, R.QP, R.ADMINISTRATOR}, summary="verify chain"),
        _rule(
            "audit.review",
            _QA,
            signature=Meaning.REVIEWED,
            summary="record that a period of the audit trail was reviewed",
        ),
        # -- master batch records (change control) ----------------------------------------
        _rule(
            "mbr.import",
            {R.QA_REVIEWER, R.ADMINISTRATOR},
            summary="import a new version of a master batch record as a draft",
        ),
        _rule(
            "mbr.approve",
            _QA,
            signature=Meaning.APPROVED,
            summary="approve a draft master batch record, which makes it effective",
        ),
        # -- executing a batch record (issue 5) ------------------------------------------
        _rule("step.record", {R.OPERATOR}, Where.PLANT, summary="record a step of a batch"),
        _rule(
            "step.verify",
            {R.OPERATOR, R.QA_REVIEWER},
            Where.PLANT,
            Meaning.VERIFIED,
            summary="verify a step another person performed (second person)",
        ),
        _rule(
            "step.correct",
            {R.OPERATOR, R.QA_REVIEWER},
            Where.PLANT,
            summary="correct a recorded value, with a reason (the original is kept)",
        ),
        _rule(
            "material.register",
            {R.LOGISTICS, R.QA_REVIEWER},
            summary="receive a material lot into quarantine",
        ),
        _rule(
            "material.release",
            _QA,
            signature=Meaning.APPROVED,
            summary="release a material lot from quarantine for use",
        ),
        _rule(
            "material.reject",
            _QA,
            signature=Meaning.REJECTED,
            summary="reject a material lot (or expire it)",
        ),
        _rule(
            "equipment.register",
            {R.ADMINISTRATOR, R.QA_REVIEWER},
            summary="register equipment or record its calibration",
        ),
        _rule(
            "deviation.open",
            {R.OPERATOR, R.QA_REVIEWER, R.QP},
            Where.PLANT,
            summary="open a deviation on a batch",
        ),
        _rule(
            "step.start",
            {R.OPERATOR},
            Where.PLANT,
            summary="start a step on its equipment (its sensors' readings then belong to it)",
        ),
        _rule(
            "alarm.acknowledge",
            {R.OPERATOR, R.QA_REVIEWER},
            Where.PLANT,
            Meaning.REVIEWED,
            summary="acknowledge a sensor alarm, with a comment and an e-signature",
        ),
        _rule(
            "deviation.close",
            _QA,
            Where.PLANT,
            Meaning.APPROVED,
            summary="close a deviation with its impact assessment",
        ),
        # -- QC and release (issue 6) ---------------------------------------------------
        _rule(
            "spec.import",
            {R.QA_REVIEWER, R.ADMINISTRATOR},
            summary="import a new version of a specification as a draft",
        ),
        _rule(
            "spec.approve",
            _QA,
            signature=Meaning.APPROVED,
            summary="approve a draft specification, which makes it effective",
        ),
        _rule(
            "sample.draw",
            {R.OPERATOR, R.QC_ANALYST},
            Where.PLANT,
            summary="draw a QC sample from a batch (it carries the COI)",
        ),
        _rule("result.enter", {R.QC_ANALYST}, Where.PLANT, summary="enter a test result"),
        _rule(
            "result.verify",
            {R.QC_ANALYST},
            Where.PLANT,
            Meaning.VERIFIED,
            summary="verify a result as the second analyst",
        ),
        _rule(
            "result.invalidate",
            {R.QC_ANALYST, R.QA_REVIEWER},
            Where.PLANT,
            summary="invalidate a result with a reason (the original is kept)",
        ),
        _rule(
            "oot.review",
            _QA,
            Where.PLANT,
            summary="review an out-of-trend result",
        ),
        _rule(
            "oos.escalate",
            {R.QC_ANALYST, R.QA_REVIEWER},
            Where.PLANT,
            summary="close phase I of an OOS investigation without a laboratory cause",
        ),
        _rule(
            "oos.conclude",
            _QA,
            Where.PLANT,
            Meaning.APPROVED,
            summary="conclude an OOS investigation",
        ),
        _rule(
            "record.review",
            _QA,
            Where.PLANT,
            Meaning.REVIEWED,
            summary="sign the review of a completed batch record",
        ),
        _rule(
            "release.request-oos",
            {R.PHYSICIAN},
            Where.CENTRE,
            Meaning.REQUESTED,
            summary="request, as treating physician, the release of an OOS dose",
        ),
        _rule(
            "alert.acknowledge",
            {R.COORDINATOR, R.PHYSICIAN},
            Where.CENTRE,
            summary="acknowledge a QC alert about a dose of the centre",
        ),
        _rule("qc.read", _EVERYONE, summary="see QC results, workload and certificates"),
        # -- analytics (issue 7) ----------------------------------------------------------
        _rule(
            "spc.exclude",
            _QA,
            Where.PLANT,
            summary="leave a result out of its control charts' limits (or put it back), "
            "with a reason",
        ),
        # -- orders and scans --------------------------------------------------------------
        _rule("order.create", {R.COORDINATOR}, summary="order a therapy for a patient"),
        _rule(
            "batch.scan",
            {R.COORDINATOR, R.OPERATOR, R.LOGISTICS, R.QA_REVIEWER},
            Where.EITHER,
            summary="spot-check a label",
        ),
        # -- one row per transition of the batch (domain/batch.py TRANSITIONS) -------------
        _rule(_batch(A.COLLECT), {R.COORDINATOR}, Where.CENTRE),
        _rule(_batch(A.DISPATCH), {R.COORDINATOR, R.LOGISTICS}, Where.CENTRE),
        _rule(_batch(A.RECEIVE), {R.OPERATOR, R.LOGISTICS}, Where.PLANT),
        _rule(_batch(A.ACCEPT), _QA, Where.PLANT, Meaning.APPROVED),
        _rule(_batch(A.REJECT_MATERIAL), _QA, Where.PLANT, Meaning.REJECTED),
        _rule(_batch(A.START_PROCESSING), {R.OPERATOR}, Where.PLANT),
        _rule(_batch(A.COMPLETE_PROCESSING), {R.OPERATOR}, Where.PLANT),
        _rule(_batch(A.RELEASE), {R.QP}, Where.PLANT, Meaning.RELEASED),
        _rule(_batch(A.RELEASE_CONDITIONALLY), {R.QP}, Where.PLANT, Meaning.RELEASED),
        _rule(_batch(A.RELEASE_OOS), {R.QP}, Where.PLANT, Meaning.RELEASED),
        _rule(_batch(A.CONFIRM_RELEASE), {R.QP}, Where.PLANT, Meaning.RELEASED),
        _rule(_batch(A.REJECT), _QA_QP, Where.PLANT, Meaning.REJECTED),
        _rule(_batch(A.SHIP), {R.LOGISTICS, R.OPERATOR}, Where.PLANT),
        _rule(_batch(A.DELIVER), {R.COORDINATOR, R.LOGISTICS}, Where.CENTRE),
        _rule(_batch(A.INFUSE), {R.COORDINATOR}, Where.CENTRE),
        _rule(_batch(A.HOLD), _QA_QP, Where.EITHER),
        _rule(_batch(A.RESUME), _QA_QP, Where.EITHER),
        # A coordinator ends a treatment (the patient no longer eligible); QA ends a batch.
        _rule(_batch(A.TERMINATE), {R.QA_REVIEWER, R.QP, R.COORDINATOR}, Where.EITHER),
    ]
)

# The actions that make a batch: whoever performed one may not release or reject it.
MAKERS = frozenset({A.START_PROCESSING, A.COMPLETE_PROCESSING})
DISPOSITIONS = frozenset(
    {A.RELEASE, A.RELEASE_CONDITIONALLY, A.RELEASE_OOS, A.CONFIRM_RELEASE, A.REJECT}
)


def rule_for(permission: str | Action) -> Rule:
    """The row for ``permission`` (an action of a batch stands for ``batch.<action>``)."""
    key = _batch(permission) if isinstance(permission, Action) else permission
    try:
        return PERMISSIONS[key]
    except KeyError:
        raise LookupError(f"no permission {key!r} in the table") from None


def check_independent(actor: Actor, action: Action, makers: Iterable[str], lot: str) -> None:
    """Refuse a disposition of batch ``lot`` by someone among its ``makers`` (user ids)."""
    if action in DISPOSITIONS and actor.user_id in set(makers):
        raise PermissionDenied(
            f"{actor.user_id} may not {action.value} batch {lot}: they made it "
            "(the person who releases or rejects a batch must not be one who made it)"
        )


def check_verifier(verifier: Actor, performer: str, what: str) -> None:
    """Refuse a second-person verification of ``what`` by the person who performed it
    (``performer``, a user id). Batch-record steps (issue 5) call this when a step is
    verified.

    >>> from vein2vein.domain.people import ALL_SITES, Actor, Role
    >>> op = Actor("op.one", "Op One", frozenset({Role.OPERATOR}), ALL_SITES)
    >>> check_verifier(op, "op.two", "step 3")
    >>> check_verifier(op, "op.one", "step 3")  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    vein2vein.domain.errors.PermissionDenied: op.one may not verify step 3: they performed it...
    """
    if verifier.user_id == performer:
        raise PermissionDenied(
            f"{verifier.user_id} may not verify {what}: they performed it "
            "(a second person verifies)"
        )
