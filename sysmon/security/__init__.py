"""Security of the server process (spec Levels 2-3): who may call what, and how hard.

* ``config.py``  the ``auth`` settings section and the server's HTTP security settings
* ``http.py``    Host check (DNS rebinding), security headers, CORS, TLS/HSTS
* ``ratelimit.py`` per client and route limits (``limits``; memory or Redis)
* ``auth.py``    authentication middleware and role dependencies (JWT, API keys, cookie)
"""
