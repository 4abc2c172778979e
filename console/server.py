"""`recording-receiver admin`: the console under uvicorn, refusing an unsafe bind before it listens."""

from __future__ import annotations

import uvicorn

from console.bind import problems
from receiver import logs
from receiver.settings import Settings


def run(settings: Settings, host: str, port: int) -> None:
    """Serve the console until interrupted; exits with the reasons when the configuration is unsafe."""
    errors = problems(settings, host)
    if errors:
        raise SystemExit("console not started: " + "; ".join(errors))
    from console.app import create_app

    app = create_app(settings.model_copy(update={"admin_host": host, "admin_port": port}))
    logs.get("console.server").info("console listening", url=f"http://{_url_host(host)}:{port}/")
    # proxy_headers stays on (uvicorn trusts FORWARDED_ALLOW_IPS, loopback by default) so that a TLS
    # proxy on the same host makes cookies Secure through X-Forwarded-Proto.
    uvicorn.run(
        app, host=host, port=port, log_level=settings.log_level.lower(), access_log=False,
        server_header=False, timeout_graceful_shutdown=5,
    )


def _url_host(host: str) -> str:
    return f"[{host}]" if ":" in host and not host.startswith("[") else host
