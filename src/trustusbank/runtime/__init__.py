"""The orchestrator: `up` reads deploy/ and runs it as pods on three simulated nodes.

It starts, supervises and restarts the processes (`supervisor`, `processes`, `podspec`), seeds
the image store (`image_seed`), rolls pods out (`rollout`), applies and deletes manifests on a
running cluster (`apply`), answers on the owner-only control socket (`control`) and forwards
the seed's local ports (`portforward`). The state it writes for every process is `cluster/`.
"""
