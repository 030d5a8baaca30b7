"""What every API route depends on: the running application, and who is asking.

Every route but ``POST /api/tokens`` (and the docs) takes :data:`IdentityDep`: the person
behind the ``Authorization: Bearer <token>`` header, an API token from ``POST /api/tokens``.
A missing, unknown, revoked or expired token is a 401 with ``WWW-Authenticate: Bearer``.
"""

from __future__ import annotations

from typing import Annotated, cast

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from vein2vein.domain.errors import AuthenticationFailed
from vein2vein.services import auth
from vein2vein.services.app import App
from vein2vein.services.auth import Identity

__all__ = ["AppDep", "IdentityDep", "get_app", "get_identity"]


def get_app(request: Request) -> App:
    """The :class:`App` that ``vein2vein.asgi.create_app`` stored on the ASGI application."""
    return cast(App, request.app.state.v2v)


AppDep = Annotated[App, Depends(get_app)]

# auto_error=False: a missing header is answered by resolve_token, as a 401 in our JSON shape
# (FastAPI's own would be a 403 without WWW-Authenticate).
_bearer = HTTPBearer(
    auto_error=False,
    bearerFormat="v2v_<token id>_<secret>",
    description="An API token from POST /api/tokens.",
)


def get_identity(
    app: AppDep,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> Identity:
    """The person behind the bearer token, or :class:`AuthenticationFailed` (401)."""
    if credentials is None:
        raise AuthenticationFailed(
            "sign in first: send Authorization: Bearer <token> (POST /api/tokens issues one)"
        )
    return auth.resolve_token(app.uow(), credentials.credentials, kinds=("api",))


IdentityDep = Annotated[Identity, Depends(get_identity)]
