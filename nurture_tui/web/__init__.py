"""Web: the Starlette tracking app (open pixel, click redirect, unsubscribe, events API)."""
