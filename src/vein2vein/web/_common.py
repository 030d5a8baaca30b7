"""Shared by the page routes: the templates and their filters, the app dependency, barcodes."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, cast

import segno
from fastapi import Depends, Request
from fastapi.templating import Jinja2Templates
from markupsafe import Markup

from vein2vein.services.app import App

__all__ = ["AppDep", "get_app", "qr_svg", "templates"]

_HERE = Path(__file__).parent
STATIC_DIR = _HERE / "static"
templates = Jinja2Templates(directory=_HERE / "templates")


def get_app(request: Request) -> App:
    """The :class:`App` that ``vein2vein.asgi.create_app`` stored on the ASGI application."""
    return cast(App, request.app.state.v2v)


AppDep = Annotated[App, Depends(get_app)]


def age(hours: float) -> str:
    """A waiting time a person reads at a glance: ``40 min``, ``5 h``, ``3 d 4 h``."""
    if hours < 1:
        return f"{round(hours * 60)} min"
    if hours < 48:
        return f"{hours:.0f} h"
    days, rest = divmod(round(hours), 24)
    return f"{days} d {rest} h" if rest else f"{days} d"


def utc(moment: datetime | str | None) -> str:
    """``2026-03-02 08:00 UTC`` from an aware datetime or an ISO 8601 text."""
    if moment is None:
        return ""
    if isinstance(moment, str):
        moment = datetime.fromisoformat(moment.replace("Z", "+00:00"))
    if moment.tzinfo is None:  # SQLite returns naive datetimes; the store writes UTC
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC")


def label(code: str) -> str:
    """``IN_TRANSIT`` -> ``In transit``; ``start-processing`` -> ``Start processing``."""
    words = code.replace("_", " ").replace("-", " ").lower()
    words = " ".join(_ACRONYMS.get(w, w) for w in words.split())
    return words[:1].upper() + words[1:]


_ACRONYMS = {
    "qc": "QC", "oos": "OOS", "qa": "QA", "qp": "QP", "coi": "COI", "din": "DIN", "moi": "MOI",
    "cd3": "CD3", "cd4": "CD4", "cd8": "CD8", "car": "CAR", "vcn": "VCN", "ml": "mL",
}  # fmt: skip


def qr_svg(data: str, title: str, scale: int = 4) -> Markup:
    """A QR code of ``data`` as inline SVG (segno, drawn on the server)."""
    svg = segno.make_qr(data, error="m").svg_inline(
        scale=scale, border=2, title=title, svgclass="barcode", lineclass="barcode-line"
    )
    return Markup(svg)  # segno escapes the title; the rest is its own markup


templates.env.filters["age"] = age
templates.env.filters["utc"] = utc
templates.env.filters["label"] = label
templates.env.globals["qr_svg"] = qr_svg
