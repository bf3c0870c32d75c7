"""The console's own pages: what the write-up's Grafana (18001) and kagent UI (18007) show.

They run on the operator's side, as the port-forwards do, not in a pod: they read what only
the operator may read (the evidence store, every component's spans and the agents' sessions),
which no pod can see. The other tabs are the workloads' own pages (chatbot, attacker,
registry, alerts, SOC inbox).
"""
