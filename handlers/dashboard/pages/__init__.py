"""Dashboard pages added by other issues: each module here defines ``init_app(app)`` (see ../__init__.py)."""
