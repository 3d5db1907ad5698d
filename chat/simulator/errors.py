"""DeepSeek's JSON error envelope and the error bodies the simulator sends."""

from __future__ import annotations

from .flavors import dumps

INVALID_REQUEST = "invalid_request_error"


class ApiError(Exception):
    """An error sent as `{"error":{"message","type","param","code"}}` before any SSE byte."""

    def __init__(
        self,
        status: int,
        message: str,
        *,
        error_type: str = INVALID_REQUEST,
        code: str = INVALID_REQUEST,
        param: str | None = None,
    ):
        super().__init__(message)
        self.status = status
        self.message = message
        self.error_type = error_type
        self.code = code
        self.param = param

    def body(self) -> bytes:
        error = {
            "message": self.message,
            "type": self.error_type,
            "param": self.param,
            "code": self.code,
        }
        return dumps({"error": error}).encode()


def authentication_error(api_key: str) -> ApiError:
    # DeepSeek shows only the last four characters of the rejected key.
    return ApiError(
        401,
        f"Authentication Fails, Your api key: ****{api_key[-4:]} is invalid",
        error_type="authentication_error",
    )


def scripted_error(status: int, api_key: str) -> ApiError:
    """Build the error DeepSeek sends for `status`, or a plausible one where none was captured."""
    if status == 400:
        return ApiError(
            400, "Invalid max_tokens value, the valid range of max_tokens is [1, 393216]"
        )
    if status == 401:
        return authentication_error(api_key)
    if status == 402:
        return ApiError(402, "Insufficient Balance", error_type="unknown_error")
    if status == 422:
        return ApiError(
            422,
            "Failed to deserialize the JSON body into the target type: messages[3]: invalid type: "
            "sequence, expected a string at line 1 column 4521",
        )
    if status == 429:
        return ApiError(
            429,
            "Your current concurrency is 26, which exceeds your concurrency limit of 25 based on "
            "your remaining balance. Please top up your balance to restore your concurrency.",
            error_type="rate_limit_error",
            code="rate_limit_exceeded",
        )
    if status == 500:
        return ApiError(500, "Internal server error", error_type="api_error", code="internal_error")
    if status == 503:
        return ApiError(
            503,
            "Server overloaded, please try again later.",
            error_type="service_unavailable_error",
            code="service_unavailable",
        )
    raise ValueError(f"no scripted error body for HTTP status {status}")
