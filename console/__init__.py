"""The operations console: a private ASGI app to see, search and replay recordings."""
