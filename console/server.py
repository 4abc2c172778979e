"""`recording-receiver admin`: the console under uvicorn, refusing an unsafe bind before it listens."""

from __future__ import annotations

import uvicorn

from console.bind import problems
from console.settings import ConsoleSettings
from receiver.kernel import logs

# uvicorn would take X-Forwarded-For from any loopback peer and overwrite the client address with
# it; `console.client` honours the header only from ADMIN_TRUSTED_PROXIES (and X-Forwarded-Proto,
# for the cookies' Secure flag, from those and from a proxy on this host, as uvicorn did).
UVICORN_OPTIONS: dict[str, object] = {"proxy_headers": False}


def run(settings: ConsoleSettings, host: str, port: int) -> None:
    """Serve the console until interrupted; exits with the reasons when the configuration is unsafe."""
    errors = problems(settings, host)
    if errors:
        raise SystemExit("console not started: " + "; ".join(errors))
    from console.app import create_app

    app = create_app(settings.model_copy(update={"admin_host": host, "admin_port": port}))
    logs.get("console.server").info("console listening", url=f"http://{_url_host(host)}:{port}/")
    uvicorn.run(
        app, host=host, port=port, log_level=settings.log_level.lower(), access_log=False,
        server_header=False, timeout_graceful_shutdown=5, proxy_headers=False,
        log_config=None,  # uvicorn's records go through our handler (receiver.kernel.logs)
    )


def _url_host(host: str) -> str:
    return f"[{host}]" if ":" in host and not host.startswith("[") else host
