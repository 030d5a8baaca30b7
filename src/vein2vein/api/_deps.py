"""What every API route depends on: the running application, taken from the ASGI app's state."""

from __future__ import annotations

from typing import Annotated, cast

from fastapi import Depends, Request

from vein2vein.services.app import App

__all__ = ["AppDep", "get_app"]


def get_app(request: Request) -> App:
    """The :class:`App` that ``vein2vein.asgi.create_app`` stored on the ASGI application."""
    return cast(App, request.app.state.v2v)


AppDep = Annotated[App, Depends(get_app)]
