"""fx-api: a small frankfurter-compatible FX rates API, the converter's legitimate egress.

It serves the reference table, so the clean converter gives the same answer
whether it reached this API or fell back: only `rate_source` tells them apart.
"""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from trustusbank.workloads.vendor.rates import REFERENCE_RATES, UnsupportedCurrency, reference_rate


def _error(message: str, status: int = 422) -> JSONResponse:
    return JSONResponse({"message": message}, status_code=status)


async def latest(request: Request) -> JSONResponse:
    """GET /latest?from=GBP&to=USD,EUR&amount=1 (also base= and symbols=, as frankfurter accepts)."""
    params = request.query_params
    base = (params.get("from") or params.get("base") or "EUR").upper()
    wanted = params.get("to") or params.get("symbols")
    symbols = [s.strip().upper() for s in wanted.split(",") if s.strip()] if wanted else list(REFERENCE_RATES)
    try:
        amount = Decimal(params.get("amount", "1"))
    except InvalidOperation:
        return _error("amount must be a number")
    try:
        rates = {s: float(amount * reference_rate(base, s)) for s in symbols if s != base}
    except UnsupportedCurrency as exc:
        return _error(str(exc), 404)
    today = datetime.now(UTC).date().isoformat()
    return JSONResponse({"amount": float(amount), "base": base, "date": today, "rates": rates})


async def currencies(_: Request) -> JSONResponse:
    return JSONResponse({code: code for code in REFERENCE_RATES})


async def healthz(_: Request) -> JSONResponse:
    return JSONResponse({"status": "ok"})


def create_app() -> Starlette:
    return Starlette(
        routes=[
            Route("/latest", latest),
            Route("/v1/latest", latest),
            Route("/currencies", currencies),
            Route("/v1/currencies", currencies),
            Route("/healthz", healthz),
        ]
    )
