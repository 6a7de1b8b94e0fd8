"""API errors: raised anywhere below the routes, rendered once at the edge.

Every error body is ``{"error": {"type", "code", "message", "param"?}}``.
"""

from __future__ import annotations

from typing import Any

from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response

from edge_onboard.core.responses import JSONResponse

INVALID_REQUEST = "invalid_request_error"
AUTHENTICATION = "authentication_error"
RATE_LIMIT = "rate_limit_error"
API_ERROR = "api_error"


class ApiError(Exception):
    """An error with its HTTP status and the fields of the error body."""

    def __init__(
        self,
        status_code: int,
        code: str,
        message: str,
        *,
        param: str | None = None,
        type: str | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status_code = status_code
        self.code = code
        self.message = message
        self.param = param
        self.type = type or _default_type(status_code)
        self.headers = headers or {}

    def body(self) -> dict[str, Any]:
        error: dict[str, Any] = {"type": self.type, "code": self.code, "message": self.message}
        if self.param is not None:
            error["param"] = self.param
        return {"error": error}

    def response(self) -> JSONResponse:
        return JSONResponse(self.body(), status_code=self.status_code, headers=self.headers)


def _default_type(status_code: int) -> str:
    if status_code == 401:
        return AUTHENTICATION
    if status_code == 429:
        return RATE_LIMIT
    if status_code >= 500:
        return API_ERROR
    return INVALID_REQUEST


def invalid(message: str, *, param: str | None = None, code: str = "parameter_invalid") -> ApiError:
    return ApiError(400, code, message, param=param)


def not_found(what: str, ident: str, *, param: str | None = None) -> ApiError:
    return ApiError(404, "resource_missing", f"No such {what}: '{ident}'", param=param)


def service_unavailable(message: str) -> ApiError:
    return ApiError(503, "service_unavailable", message, headers={"Retry-After": "1"})


_HTTP_CODES = {
    404: ("route_not_found", "Unrecognized request URL."),
    405: ("method_not_allowed", "This method is not allowed on this URL."),
    413: ("request_too_large", "The request body is larger than 1 MB."),
}


async def api_error_handler(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, ApiError)
    return exc.response()


async def http_exception_handler(request: Request, exc: Exception) -> Response:
    """Starlette's own 404/405 (unknown route, wrong method) in our error shape."""
    assert isinstance(exc, HTTPException)
    code, message = _HTTP_CODES.get(exc.status_code, ("http_error", str(exc.detail)))
    if exc.status_code == 404:
        message = f"Unrecognized request URL ({request.method}: {request.url.path})."
    headers = dict(exc.headers or {})
    return ApiError(exc.status_code, code, message, headers=headers).response()
