"""/api/orders: a treatment centre orders a therapy; the batch opens in ORDERED."""

from __future__ import annotations

from fastapi import APIRouter, status

from vein2vein.api._deps import AppDep, IdentityDep
from vein2vein.api.schemas import OrderCreate, OrderPublic
from vein2vein.services import batches as svc

__all__ = ["router"]

router = APIRouter(prefix="/orders", tags=["orders"])


@router.post("", response_model=OrderPublic, status_code=status.HTTP_201_CREATED)
def place_order(app: AppDep, identity: IdentityDep, body: OrderCreate) -> OrderPublic:
    placed = svc.place_order(
        app.uow(),
        pseudonym=body.pseudonym,
        year_of_birth=body.year_of_birth,
        weight_kg=body.weight_kg,
        product=body.product,
        treatment_centre=body.treatment_centre,
        manufacturing_site=body.manufacturing_site,
        by=identity.actor,
        reference=body.reference or None,
    )
    return OrderPublic.model_validate(placed)
