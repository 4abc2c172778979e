"""The public callback app: Starlette with the callback fast path, signature checks, batched enqueue and the spool."""
