"""Fill the image store from the manifests at `up`: every Deployment's image tag -> its workload's build.

This is the bank's pipeline having built and pushed each image before the
cluster pulls it: a tag the store does not have yet gets the workload's
default build, signed with the org key. A tag it already has keeps its build
(a rug pull survives `down`/`up`, as it would in a real registry); if that
build's bytes have changed since it was pushed (a new checkout), it is pushed
again, so a digest always names the bytes that run.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from trustusbank.images.builds import BUILDS
from trustusbank.images.signing import Keys
from trustusbank.images.store import Build, ImageStore, ImageStoreError, Pushed
from trustusbank.manifests.bundle import Bundle

SEED_ACTOR = "trustusbank up"


@dataclass
class Seeded:
    added: list[Pushed] = field(default_factory=list)
    rebuilt: list[Pushed] = field(default_factory=list)
    kept: list[str] = field(default_factory=list)


def image_builds(bundle: Bundle) -> dict[str, Build]:
    """Tag -> default build, for every Deployment that runs `trustusbank serve <workload>`."""
    builds: dict[str, Build] = {}
    for deployment in bundle.deployments():
        container = deployment.containers[0]
        argv = [*container.command, *container.args]
        if not container.image or argv[:2] != ["trustusbank", "serve"] or len(argv) < 3:
            continue
        if argv[2] not in BUILDS:
            continue  # `manifests check` reports it; the pod would not start either
        build = Build.default(argv[2])
        other = builds.setdefault(container.image, build)
        if other.workload != build.workload:
            raise ImageStoreError(
                f"image {container.image} is used for both {other.workload} and {build.workload}"
                f" (Deployment {deployment.namespace}/{deployment.name})"
            )
    return builds


def seed(store: ImageStore, keys: Keys, bundle: Bundle, actor: str = SEED_ACTOR) -> Seeded:
    done = Seeded()
    for tag, build in sorted(image_builds(bundle).items()):
        current = store.lookup(tag)
        if current is None:
            pushed = store.retag(
                tag, build, signer=keys.publisher(build.variant), actor=actor, reason="seeded from deploy/"
            )
            done.added.append(pushed)
        elif current.digest != current.build.digest():
            pushed = store.retag(
                tag,
                current.build,
                signer=keys.publisher(current.build.variant),
                actor=actor,
                reason="rebuilt: the build's bytes changed since it was pushed",
            )
            done.rebuilt.append(pushed)
        else:
            done.kept.append(tag)
    return done
