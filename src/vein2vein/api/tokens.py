"""/api/tokens and /api/me: sign in for an API token, revoke one, and say who is signed in.

``POST /api/tokens`` is the one API route that takes no token: it checks the user id and
password (a wrong one counts toward the lockout and is recorded) and issues a bearer token.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Response, status

from vein2vein.api._deps import AppDep, IdentityDep
from vein2vein.api.schemas import MePublic, TokenCreate, TokenPublic
from vein2vein.services import auth

__all__ = ["router"]

router = APIRouter(tags=["sign-in"])


@router.post("/tokens", response_model=TokenPublic, status_code=status.HTTP_201_CREATED)
def create_token(app: AppDep, body: TokenCreate) -> TokenPublic:
    """Sign in with your user id and password; the token is shown once. Send it as
    ``Authorization: Bearer <token>``."""
    signed = auth.sign_in(
        app.uow(),
        user_id=body.user_id,
        password=body.password,
        kind="api",
        label=body.label or "api",
    )
    return TokenPublic(
        token=signed.token,
        token_id=signed.token_id,
        expires_at=signed.expires_at,
        user_id=signed.actor.user_id,
        full_name=signed.actor.full_name,
        roles=sorted(r.value for r in signed.actor.roles),
    )


@router.delete(
    "/tokens/{token_id}",
    status_code=status.HTTP_204_NO_CONTENT,
    response_class=Response,
)
def revoke_token(
    app: AppDep,
    identity: IdentityDep,
    token_id: str,
    reason: Annotated[str | None, Query(max_length=500)] = None,
) -> Response:
    """Revoke a token or session: your own, or anyone's if you are an administrator."""
    auth.revoke_credential(
        app.uow(), identity.actor, token_id, reason=reason or "revoked through the API"
    )
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.get("/me", response_model=MePublic)
def read_me(identity: IdentityDep) -> MePublic:
    """Who the token belongs to: name, roles, site scope, and when the token expires."""
    actor = identity.actor
    return MePublic(
        user_id=actor.user_id,
        full_name=actor.full_name,
        roles=sorted(r.value for r in actor.roles),
        sites=sorted(actor.sites),
        token_id=identity.token_id,
        expires_at=identity.credential.expires_at,
    )
