"""Launch fakesnow's Snowflake server so snowflake-connector-python 5.x can log in to it.

Run by the fakesnow environment's python (never imported by our packages, and it imports
nothing from them): `python fakesnow_server.py`. It binds 127.0.0.1 on a free port, prints
`FAKESNOW_PORT=<port>` once listening is possible, and serves until SIGTERM/SIGINT.
The adapter: fakesnow 0.12's login answer lacks `masterToken` and `sessionId`, which the
5.x connector requires; we add them. Everything else is fakesnow's own app.
"""

import json
import socket
import sys

import uvicorn
from fakesnow.server import JSONResponse, routes
from fakesnow.server import login_request as fakesnow_login
from starlette.applications import Starlette
from starlette.routing import Route


async def login_request(request):  # type: ignore[no-untyped-def]
    """fakesnow's login, plus the two fields connector 5.x insists on."""
    response = await fakesnow_login(request)
    body = json.loads(response.body)
    body["data"].update(masterToken=body["data"]["token"], sessionId=1)
    return JSONResponse(body)


adapted_routes = [
    Route(r.path, login_request, methods=["POST"]) if r.path.endswith("login-request") else r
    for r in routes
]
sock = socket.socket()
sock.bind((sys.argv[1] if len(sys.argv) > 1 else "127.0.0.1", 0))
print(f"FAKESNOW_PORT={sock.getsockname()[1]}", flush=True)
# Clients keep idle connections open: do not wait for them when asked to stop.
config = uvicorn.Config(
    Starlette(routes=adapted_routes), log_level="warning", timeout_graceful_shutdown=1
)
uvicorn.Server(config).run(sockets=[sock])
