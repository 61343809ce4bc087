"""The bearer token of management and feedback routes (shown as a security scheme in OpenAPI)."""

from __future__ import annotations

import hmac

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from ..http import Unauthorized
from ..state import Server, server_of

_bearer = HTTPBearer(auto_error=False, description="The server's token ([server] token or RECSEEK_SERVE_TOKEN); "
                                                   "not needed when none is configured.")


async def require_token(request: Request, credentials: HTTPAuthorizationCredentials | None = Depends(_bearer),
                        server: Server = Depends(server_of)) -> None:
    """Refuse the request unless it carries the configured token (any request when there is none)."""
    token = server.config.token
    if not token:
        return
    if credentials is None or credentials.scheme.lower() != "bearer" or not credentials.credentials:
        raise Unauthorized("this endpoint needs an Authorization: Bearer <token> header")
    if not hmac.compare_digest(credentials.credentials.strip().encode(), token.encode()):
        raise Unauthorized("the bearer token is not valid")
