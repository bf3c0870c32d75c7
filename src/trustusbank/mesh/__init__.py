"""The embedded Istio-ambient mesh: identity, HBONE, ztunnel, policy."""
