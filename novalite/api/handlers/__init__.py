"""Request handlers: small functions taking the request and the URL variables."""
