"""The sign-in in front of the operator's pages, as the write-up's dex and oauth2-proxy do it.

`provider` plays dex: an OpenID Connect provider with a login form and the seed's static users
(admin@kagent.local / admin). `frontdoor` plays oauth2-proxy: an ASGI wrapper that lets a
request through only with a session it issued after verifying the provider's ID token, and
tells the wrapped app who is asking. `chain` puts them together for the console process.
JWS and JWT are joserfc's, the OAuth client authlib's: nothing here signs or parses tokens itself.
"""
