"""ASGI middleware run before any route: body limits, input guards, request ids."""
