"""What the Linux kernel gives a container runtime: namespaces, mounts, privileges.

The embedded runtime uses these to make each pod as closed as a pod on a kind
node (`runtime/sandbox.py` decides; this package only speaks to the kernel).
Nothing here imports the rest of the project: it is the bottom of the stack.
"""
