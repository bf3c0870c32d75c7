"""ztunnel's role, one process per node: capture, HBONE, L4 authorization, access logs."""
