"""JSON error bodies, and logging failures without what they quote.

Every error is `{"detail": "<message>"}`; messages an agent may see are in Chinese because the
panel shows them as they are. Exception messages may quote a query or a comment (personal data),
so only their type and stack reach the server log, and echoed input is masked.
"""

from __future__ import annotations

import json
import logging
import re
import traceback

from fastapi import HTTPException, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse

from kb_service.masking import mask_personal_data

log = logging.getLogger("kb_service.web")

def validation_message(exc: RequestValidationError) -> str:
    parts: list[str] = []
    for error in exc.errors():
        if error.get("type") == "json_invalid":
            return "请求体不是合法的 JSON"
        loc = [str(p) for p in error.get("loc", ()) if p not in ("body", "query", "path", "header")]
        where = ".".join(loc)
        message = error.get("msg", "invalid value")
        if error.get("type") == "missing":
            message = "field required"
        elif "input" in error:
            # The echoed input is masked first (it may hold a phone or an ID), then cut.
            typed = json.dumps(error["input"], ensure_ascii=False, default=str)[:400]
            message = f"{message} (got {mask_personal_data(typed)[:80]})"
        parts.append(f"{where}: {message}" if where else message)
    return encodable("请求参数有误：" + "; ".join(parts or ["invalid request"]))


def encodable(text: str) -> str:
    """Text that encodes as UTF-8: a lone surrogate echoed from the input becomes `\\ud800`."""
    return text.encode("utf-8", "backslashreplace").decode("utf-8")


async def on_validation_error(request: Request, exc: RequestValidationError) -> JSONResponse:
    return JSONResponse({"detail": validation_message(exc)}, status_code=422)


def log_failure(message: str, exc: BaseException, *args: object) -> None:
    """Log where an error happened, not what it says: exception messages may quote a query or a
    feedback comment (personal data), so only the exception type and the stack are logged."""
    stack = "".join(traceback.format_tb(exc.__traceback__))
    log.error(message + ": %s\n%s", *args, type(exc).__name__, stack.rstrip())


async def on_unexpected_error(request: Request, exc: Exception) -> JSONResponse:
    log_failure("unhandled error on %s %s", exc, request.method, request.url.path)
    return JSONResponse({"detail": "服务内部错误，请稍后重试；如持续出现请联系知识库管理员"}, status_code=500)


def unprocessable(message: str) -> HTTPException:
    return HTTPException(422, message)


_ABSOLUTE_PATH = re.compile(r"(?:[A-Za-z]:)?[\\/](?:[^\s'\"\\/:]+[\\/])*([^\s'\"\\/:]*)")


def without_paths(text: str) -> str:
    """An error message for a caller: absolute file paths shortened to their last part."""
    return _ABSOLUTE_PATH.sub(lambda m: m.group(1) or "…", text)
