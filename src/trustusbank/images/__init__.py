"""Images: what each is built from (`builds`), the bytes' digest, the store behind the tags, signatures.

A pull happens when a pod starts (`pull`); `up` fills the store from the manifests
(`runtime/image_seed.py`).
"""
