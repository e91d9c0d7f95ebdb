"""The dashboard: templates, our static files, and where the vendor files come from."""
