"""vmmig-api: the REST API in front of the conductor (WSGI, webob and routes).

Each request is checked once at the boundary (vmmig.api.params), becomes an
oslo.context request context from the headers keystonemiddleware set, and goes to
the conductor over RPC with it; the conductor's policy decides.
"""
