"""The image plan: the tags deploy/ names, the docker/podman argv that build and push them, and the
Containerfile they build, read back as the image config the rootfs check runs."""

from __future__ import annotations

import functools
import json
import shutil
import stat
import sys
from pathlib import Path

import pytest
import yaml

from trustusbank.images.builds import BUILDS
from trustusbank.k8s.image import (
    CONVERTER_BUILDS,
    VENV_STEPS,
    EngineMissing,
    ImageCommandFailed,
    ImagePlan,
    ImagePlanError,
    find_engine,
    image_tags,
    read_containerfile,
    run,
)
from trustusbank.k8s.versions import PYTHON_IMAGE

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"
CONTAINERFILE = ROOT / "Containerfile"
CONVERTER_TAG = "localhost:5001/acme-fx/currency-converter:1.0.0"
ACCOUNT_TAG = "localhost:5001/trustusbank/account-mcp:1.0.0"


def deployment_images() -> dict[str, str]:
    """image -> workload, read straight from the YAML (not through the bundle the plan uses)."""
    found: dict[str, str] = {}
    for path in sorted(DEPLOY.glob("*/*.yaml")):
        for doc in yaml.safe_load_all(path.read_text()):
            if doc and doc.get("kind") == "Deployment":
                for container in doc["spec"]["template"]["spec"]["containers"]:
                    found[container["image"]] = container["command"][2]
    return found


def fake_engines(directory: Path, *names: str, fail_on: str = "") -> Path:
    """Executables that append their argv (as JSON) to `calls.jsonl`; `fail_on` makes one subcommand fail."""
    directory.mkdir(parents=True, exist_ok=True)
    log = directory / "calls.jsonl"
    for name in names:
        script = directory / name
        script.write_text(
            f"#!{sys.executable}\n"
            "import json, os, sys\n"
            f"with open({str(log)!r}, 'a') as out:\n"
            "    out.write(json.dumps([os.path.basename(sys.argv[0]), *sys.argv[1:]]) + '\\n')\n"
            f"sys.exit(3 if {fail_on!r} and sys.argv[1:2] == [{fail_on!r}] else 0)\n"
        )
        script.chmod(script.stat().st_mode | stat.S_IXUSR)
    return log


def calls(log: Path) -> list[list[str]]:
    return [json.loads(line) for line in log.read_text().splitlines()] if log.exists() else []


# -- the tags ---------------------------------------------------------------------------------


def test_every_deployment_image_is_a_tag_with_its_workload() -> None:
    tags = image_tags(DEPLOY)
    assert {t.ref: t.workload for t in tags} == deployment_images()
    by_ref = {t.ref: t for t in tags}
    assert by_ref[CONVERTER_TAG].workload == "currency-converter"
    assert by_ref[CONVERTER_TAG].deployments == ("trustusbank-bank-vendors/currency-converter",)
    assert by_ref[ACCOUNT_TAG].workload == "account-mcp"
    assert all(t.workload in BUILDS for t in tags)


def edited_deploy(tmp_path: Path, old: str, new: str) -> Path:
    copy = tmp_path / "deploy"
    shutil.copytree(DEPLOY, copy)
    path = copy / "05-mcp-servers" / "account-mcp.yaml"
    text = path.read_text()
    assert old in text
    path.write_text(text.replace(old, new))
    return copy


def test_the_converter_tag_shared_with_another_workload_is_refused(tmp_path: Path) -> None:
    """A rug pull of a shared tag would swap the bank's own server too."""
    deploy = edited_deploy(tmp_path, ACCOUNT_TAG, CONVERTER_TAG)
    with pytest.raises(ImagePlanError, match="runs both"):
        image_tags(deploy)


def test_a_container_without_an_image_is_refused(tmp_path: Path) -> None:
    deploy = edited_deploy(tmp_path, f"          image: {ACCOUNT_TAG}\n", "")
    with pytest.raises(ImagePlanError, match="names no image"):
        image_tags(deploy)


# -- build and push argv ------------------------------------------------------------------------


@functools.cache
def plan(engine: str) -> ImagePlan:
    """Read once per engine: checking the whole bundle takes a second."""
    return ImagePlan.from_deploy(DEPLOY, ROOT, engine)


def expected_build(engine: str, build: str, refs: list[str]) -> list[str]:
    argv = [engine, "build", "--file", str(CONTAINERFILE), "--build-arg", f"PYTHON_IMAGE={PYTHON_IMAGE}"]
    argv += ["--build-arg", f"CONVERTER_BUILD={build}"]
    for ref in refs:
        argv += ["--tag", ref]
    return [*argv, str(ROOT)]


def test_docker_builds_every_tag_once_then_pushes_each() -> None:
    refs = sorted(deployment_images())
    assert plan("docker").build_commands() == [
        expected_build("docker", "clean", refs),
        *(["docker", "push", ref] for ref in refs),
    ]


def test_podman_pushes_to_the_plain_http_local_registry_without_tls() -> None:
    refs = sorted(deployment_images())
    assert plan("podman").build_commands() == [
        expected_build("podman", "clean", refs),
        *(["podman", "push", "--tls-verify=false", ref] for ref in refs),
    ]


def test_an_initial_rug_pulled_converter_is_a_second_build_of_its_tag_only() -> None:
    commands = plan("docker").build_commands("mock-rugpull")
    shared = sorted(r for r in deployment_images() if r != CONVERTER_TAG)
    assert commands[:2] == [
        expected_build("docker", "clean", shared),
        expected_build("docker", "mock-rugpull", [CONVERTER_TAG]),
    ]


@pytest.mark.parametrize("engine", ["docker", "podman"])
def test_rug_pull_rebuilds_the_converter_under_the_same_tag(engine: str) -> None:
    commands = plan(engine).rug_pull_commands()
    assert commands[0] == expected_build(engine, "real-rugpull", [CONVERTER_TAG])
    assert len(commands) == 2
    assert commands[1][:2] == [engine, "push"]
    assert commands[1][-1] == CONVERTER_TAG  # the tag the Deployment already runs: no manifest changes
    assert plan(engine).rug_pull_commands("mock-rugpull")[0] == expected_build(
        engine, "mock-rugpull", [CONVERTER_TAG]
    )


def test_a_rug_pull_must_be_malicious_and_a_build_must_exist() -> None:
    with pytest.raises(ImagePlanError, match="honest"):
        plan("docker").rug_pull_commands("clean")
    with pytest.raises(ImagePlanError, match="builds are clean, mock-rugpull, real-rugpull"):
        plan("docker").rug_pull_commands("evil")


def test_a_plan_needs_a_checkout_with_the_containerfile(tmp_path: Path) -> None:
    with pytest.raises(ImagePlanError, match="no Containerfile"):
        ImagePlan.from_deploy(DEPLOY, tmp_path, "docker")


# -- which engine ---------------------------------------------------------------------------------


def test_docker_is_preferred_and_podman_found_alone(tmp_path: Path) -> None:
    fake_engines(tmp_path / "both", "docker", "podman")
    fake_engines(tmp_path / "podman-only", "podman")
    assert find_engine(str(tmp_path / "both")) == "docker"
    assert find_engine(str(tmp_path / "podman-only")) == "podman"


def test_no_engine_is_an_error_naming_both_and_how_to_get_them(tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()
    with pytest.raises(EngineMissing) as caught:
        find_engine(str(tmp_path / "empty"))
    message = str(caught.value)
    assert "docker" in message
    assert "podman" in message
    assert "apt-get install docker.io" in message
    assert "apt-get install podman" in message


# -- the runner --------------------------------------------------------------------------------------


@pytest.mark.parametrize("engine", ["docker", "podman"])
def test_the_runner_executes_exactly_the_plan(tmp_path: Path, engine: str) -> None:
    log = fake_engines(tmp_path / "bin", engine)
    commands = plan(engine).build_commands() + plan(engine).rug_pull_commands()
    run(commands, env={"PATH": str(tmp_path / "bin")})
    assert calls(log) == commands


def test_the_runner_stops_at_the_first_failure(tmp_path: Path) -> None:
    log = fake_engines(tmp_path / "bin", "docker", fail_on="push")
    commands = plan("docker").build_commands()
    with pytest.raises(ImageCommandFailed, match="exited with 3"):
        run(commands, env={"PATH": str(tmp_path / "bin")})
    assert calls(log) == commands[:2]  # the build, the first push; nothing after it


def test_the_runner_reports_a_missing_engine(tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()
    with pytest.raises(EngineMissing, match="docker"):
        run([["docker", "version"]], env={"PATH": str(tmp_path / "empty")})


# -- the Containerfile -------------------------------------------------------------------------------


@pytest.mark.parametrize("build", CONVERTER_BUILDS)
def test_the_image_runs_serve_as_a_non_root_user_from_its_venv(build: str) -> None:
    config = read_containerfile(CONTAINERFILE, build)
    assert config.entrypoint == ("trustusbank", "serve")
    uid, _, gid = config.user.partition(":")
    assert int(uid) != 0
    assert int(gid) != 0
    assert config.env["PATH"].split(":")[0] == "/opt/trustusbank/bin"
    assert config.workdir == config.env["TRUSTUSBANK_STATE_DIR"]
    assert config.stages[-2] == f"converter-{build}"


def test_only_a_rug_pulled_image_pins_the_converter_build() -> None:
    """The clean image is every workload's: pinning `clean` would make account-mcp refuse to start."""
    assert "TRUSTUSBANK_BUILD_VARIANT" not in read_containerfile(CONTAINERFILE, "clean").env
    for build in CONVERTER_BUILDS[1:]:
        assert read_containerfile(CONTAINERFILE, build).env["TRUSTUSBANK_BUILD_VARIANT"] == build


def test_every_converter_build_has_a_stage_and_no_other() -> None:
    config = read_containerfile(CONTAINERFILE)
    stages = {name.removeprefix("converter-") for name in config.runs if name.startswith("converter-")}
    assert stages == set(BUILDS["currency-converter"].variants)
    with pytest.raises(ImagePlanError):
        read_containerfile(CONTAINERFILE, "evil")


def test_the_build_stage_runs_the_venv_steps_the_rootfs_runs() -> None:
    runs = read_containerfile(CONTAINERFILE).runs
    assert runs["build"][0].startswith("python3 -m pip wheel")
    assert runs["build"][1:] == VENV_STEPS
    final_chain = read_containerfile(CONTAINERFILE).stages
    assert "build" not in final_chain  # the wheel and pip stay behind
    assert any("pip uninstall" in step for step in runs["runtime"])


def test_the_base_image_is_the_pinned_one() -> None:
    text = CONTAINERFILE.read_text()
    assert f"ARG PYTHON_IMAGE={PYTHON_IMAGE}\n" in text


def test_the_context_lets_in_what_the_containerfile_copies() -> None:
    ignore = (ROOT / ".containerignore").read_text().splitlines()
    assert (ROOT / ".dockerignore").read_text().splitlines() == ignore
    assert ignore[1] == "*"  # after the comment: everything is out unless let in
    sources = [
        source.rstrip("/")
        for line in CONTAINERFILE.read_text().splitlines()
        if line.startswith("COPY ") and "--from" not in line
        for source in line.split()[1:-1]
    ]
    assert sources == ["pyproject.toml", "README.md", "src", "deploy"]
    for source in sources:
        assert f"!{source}" in ignore or f"!{source}/" in ignore, source


def test_an_env_line_that_needs_expanding_is_refused(tmp_path: Path) -> None:
    file = tmp_path / "Containerfile"
    file.write_text("FROM scratch AS a\nENV PATH=/x:$PATH\n")
    with pytest.raises(ImagePlanError, match="plain key=value"):
        read_containerfile(file)
