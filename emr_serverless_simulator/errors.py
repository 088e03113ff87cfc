"""AWS error responses: the error code decides the HTTP status, as AWS's rest-json services send them."""

from __future__ import annotations

# Status per code. The emr-serverless model gives the first four; the others are AWS's common errors
# (ThrottlingException is 400, not 429, as the AWS front end sends it).
STATUS_BY_CODE: dict[str, int] = {
    "ValidationException": 400,
    "ResourceNotFoundException": 404,
    "InternalServerException": 500,
    "ConflictException": 409,
    "ServiceQuotaExceededException": 402,
    "ThrottlingException": 400,
    "TooManyRequestsException": 429,
    "AccessDeniedException": 403,
    "UnrecognizedClientException": 403,
    "ExpiredTokenException": 403,
    "MissingAuthenticationTokenException": 403,
    "InvalidSignatureException": 403,
    "UnknownOperationException": 404,
    "ServiceUnavailableException": 503,
    "InternalFailure": 500,
    "RequestTimeout": 408,
}

DEFAULT_MESSAGES: dict[str, str] = {
    "ThrottlingException": "Rate exceeded",
    "InternalServerException": "An internal error occurred.",
    "ServiceUnavailableException": "Service is unavailable. Try again later.",
    "AccessDeniedException": "User is not authorized to perform this action.",
}


def status_for(code: str) -> int:
    """Unknown codes are client errors, as most of AWS's are."""
    return STATUS_BY_CODE.get(code, 400)


class ApiError(Exception):
    """An error the simulator answers with instead of a result."""

    def __init__(self, code: str, message: str | None = None, status: int | None = None) -> None:
        self.code = code
        self.message = message or DEFAULT_MESSAGES.get(code, code)
        self.status = status if status is not None else status_for(code)
        super().__init__(f"{self.code}: {self.message}")


def validation(message: str) -> ApiError:
    return ApiError("ValidationException", message)


def not_found(message: str) -> ApiError:
    return ApiError("ResourceNotFoundException", message)
