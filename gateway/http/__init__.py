"""The gateway's HTTP plumbing: everything between the socket and a route, and nothing
about what a route does.

- `server.py` builds the uvicorn server (header timeout and size, connection limit) and
  `log_redaction.py` keeps tokens and keys out of its logs;
- `guard.py` runs before any route: keys, Host and Origin (`same_origin.py`), body sizes
  and body deadlines; `headers.py` adds the security headers to every answer;
- `errors.py` is the one place where errors become HTTP answers;
- `deps.py` holds the request dependencies routes declare (`ServicesDep`, `PrincipalDep`,
  `JobId`, ...), the one module here that knows the services container;
- `multipart.py` streams an upload to the artifact store (`media_sniff.py` checks what it
  is), `params.py` reads job parameters from a form or a JSON body, `ranges.py` serves a
  stored file with Range requests;
- `docs.py` (Swagger UI) and `page.py` (the browser page) serve static files.

It never imports `gateway.routes` or `gateway.services` (bar the container, in deps.py):
tests/unit/test_import_boundaries.py.
"""
