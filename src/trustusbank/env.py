"""Every setting the project reads from the environment, said once.

Configuration is by environment, as in a container. Each `Setting` below gives the
variable's name, its default, a one-line meaning, who reads it and how its value is
parsed. Readers call `SETTING.read()` (or `read_as`, with a parser of their own);
code that builds a child process's environment uses `SETTING.name`.

A value that cannot be used fails loudly: `SettingError` names the variable, the
value and what was expected. It is a `ConfigError`, and a `ValueError` as the
readers' callers have always caught.

Blank values keep the meaning each reader has always given them: for most settings
an empty value is the same as unset (`blank_is_unset`), for the numbers it is a bad
value, and a few strip surrounding spaces first (`strip`).

Most names are `TRUSTUSBANK_*`. A few are not (`external=True`): variables the
project's pods are given by their manifests or by the user (`FX_API_URL`, ...),
read by project code and documented in the README like the others.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Generic, TypeVar

from trustusbank.errors import ConfigError

T = TypeVar("T")
U = TypeVar("U")

PREFIX = "TRUSTUSBANK_"


class SettingError(ConfigError, ValueError):
    """A setting's value cannot be used; the message names the variable and what it expects."""


# -- how values are parsed: each raises ValueError saying what was expected ------------------


def text(raw: str) -> str:
    """Any string, as given."""
    return raw


def path(raw: str) -> Path:
    """A path, as given (relative paths are relative to the reader's working directory)."""
    return Path(raw)


def home_path(raw: str) -> Path:
    """A path; a leading `~` is the user's home."""
    return Path(raw).expanduser()


def existing_file(raw: str) -> Path:
    """A path to a file that exists."""
    file = Path(raw)
    if not file.is_file():
        raise ValueError("no such file")
    return file


def seconds(raw: str) -> float:
    """A number of seconds, as Python's float() reads it (`60`, `2.5`, `1e3`)."""
    try:
        return float(raw)
    except ValueError:
        raise ValueError("expected a number of seconds, such as 60 or 2.5") from None


def port(raw: str) -> int:
    """A whole number, as Python's int() reads it (`2525`)."""
    try:
        return int(raw)
    except ValueError:
        raise ValueError("expected a port number, such as 2525") from None


def off_when_zero(raw: str) -> bool:
    """False for exactly `0`; any other value (even `false` or `no`) is True."""
    return raw != "0"


def isolation_mode(raw: str) -> str:
    """`auto`, `namespaces` or `cooperative`."""
    value = raw.strip().lower()
    if value not in ("auto", "namespaces", "cooperative"):
        raise ValueError("expected auto, namespaces or cooperative")
    return value


def comma_list(raw: str) -> tuple[str, ...]:
    """Comma-separated items, each stripped; empty items dropped."""
    return tuple(item.strip() for item in raw.split(",") if item.strip())


@dataclass(frozen=True)
class Setting(Generic[T]):
    """One environment variable: what it is called, means and defaults to, who reads it, how."""

    name: str
    meaning: str
    readers: str
    parse: Callable[[str], T]
    default: T
    # The default as a person reads it, when `default` is None because the reader computes it.
    default_doc: str = ""
    # Who sets it, for variables the runtime gives each pod rather than the user.
    set_by: str = ""
    # Strip surrounding whitespace before anything else.
    strip: bool = False
    # An empty value (after strip) reads as unset; when False it is parsed like any other.
    blank_is_unset: bool = True
    # Not a TRUSTUSBANK_ name: a variable of the pods' own, read by project code.
    external: bool = False

    def __post_init__(self) -> None:
        if self.external == self.name.startswith(PREFIX):
            raise ValueError(f"{self.name}: external is for names without the {PREFIX} prefix, only those")

    @property
    def parsed(self) -> str:
        """How the value is parsed, in words (the parser's docstring)."""
        return (self.parse.__doc__ or "").strip()

    def raw(self, environ: Mapping[str, str] | None = None) -> str | None:
        """The value as set (stripped if `strip`); None when unset (or blank, if that means unset)."""
        value = (os.environ if environ is None else environ).get(self.name)
        if value is not None and self.strip:
            value = value.strip()
        if value is None or (self.blank_is_unset and value == ""):
            return None
        return value

    def read(self, environ: Mapping[str, str] | None = None) -> T:
        """The parsed value, or the default when unset; SettingError when the value cannot be used."""
        raw = self.raw(environ)
        if raw is None:
            return self.default
        try:
            return self.parse(raw)
        except ValueError as exc:
            raise SettingError(f"{self.name}={raw}: {exc}") from None

    def read_as(self, convert: Callable[[T], U], environ: Mapping[str, str] | None = None) -> U:
        """`read()`, then a reader's own parser (one env.py cannot import); its ValueError names us."""
        value = self.read(environ)
        try:
            return convert(value)
        except ValueError as exc:
            raise SettingError(f"{self.name}={value}: {exc}") from None


# -- where things are ------------------------------------------------------------------------

STATE_DIR: Setting[Path | None] = Setting(
    "TRUSTUSBANK_STATE_DIR",
    "where state lives (databases, certificates, logs, the cluster's files)",
    "paths.state_dir, so every command and workload; set per pod by `up`",
    home_path,
    None,
    default_doc="the user's state directory (platformdirs: ~/.local/state/trustusbank on Linux)",
)
DEPLOY_DIR: Setting[Path | None] = Setting(
    "TRUSTUSBANK_DEPLOY_DIR",
    "the manifest bundle",
    "paths.deploy_dir: manifests, lint, agentregistry, alerts, `up`; set per pod by `up`",
    home_path,
    None,
    default_doc="./deploy if it is a directory, else the checkout's deploy/",
)

# -- set by the embedded runtime in every pod (runtime/podspec.py) -----------------------------

POD_IP: Setting[str | None] = Setting(
    "TRUSTUSBANK_POD_IP",
    "the pod's private address: what 0.0.0.0 means inside the pod",
    "serve (--host 0.0.0.0), workloads.mcp_http (allowed Host), soc-inbox (SMTP address)",
    text,
    None,
    default_doc="none: 0.0.0.0 is all interfaces, SMTP binds 127.0.0.1",
    set_by="`up` (runtime/podspec.py, runtime/control.py for `exec`)",
)
TRACES_DIR: Setting[Path | None] = Setting(
    "TRUSTUSBANK_TRACES_DIR",
    "where a pod writes its spans",
    "agents.a2a.server (the agent's trace file)",
    path,
    None,
    default_doc="<state>/traces",
    set_by="`up` (runtime/podspec.py)",
)
LOGS_DIR: Setting[Path | None] = Setting(
    "TRUSTUSBANK_LOGS_DIR",
    "where a pod writes the decision logs the evidence trail reads",
    "agents.a2a.access_guard (agent decision log), alerts.app (alerts.jsonl), "
    "mesh.guard.app (mcp-guard.jsonl)",
    path,
    None,
    default_doc="<state>/logs",
    set_by="`up` (runtime/podspec.py)",
)
TOPOLOGY: Setting[Path | None] = Setting(
    "TRUSTUSBANK_TOPOLOGY",
    "the cluster's topology file: who is at which address (caller identities, scrape targets)",
    "agents.a2a.server, workloads.soc_inbox.app, alerts.app",
    path,
    None,
    default_doc="none: callers have no identity (AccessPolicies then deny), no scrape targets",
    set_by="`up` (runtime/podspec.py)",
)
IMAGE: Setting[str | None] = Setting(
    "TRUSTUSBANK_IMAGE",
    "the container's image reference, pulled when `serve` starts",
    "images.pull (serve)",
    text,
    None,
    default_doc="none (required when TRUSTUSBANK_IMAGE_STORE is set)",
    set_by="`up` (runtime/podspec.py; never inherited from the machine)",
)
IMAGE_STORE: Setting[Path | None] = Setting(
    "TRUSTUSBANK_IMAGE_STORE",
    "the image store (registry) the pod's image is pulled from",
    "images.pull (serve), workloads.agentregistry.app (running digests and signatures)",
    path,
    None,
    default_doc="none: nothing is pulled, the caller picks the build; the registry checks no images",
    set_by="`up` (runtime/podspec.py; never inherited from the machine)",
)
BUILD_VARIANT: Setting[str | None] = Setting(
    "TRUSTUSBANK_BUILD_VARIANT",
    "which build of the image `serve` runs (the `--variant` option), instead of pulling the tag",
    "cli.serve_cmd (typer reads it for --variant; an empty value is unset); never passed to pods",
    text,
    None,
    default_doc="in a pod, the build the image tag resolves to; else the workload's first build",
)

# -- `up` ------------------------------------------------------------------------------------

SVID_TTL_SECONDS: Setting[float] = Setting(
    "TRUSTUSBANK_SVID_TTL_SECONDS",
    "SVID lifetime in seconds (re-issued at half-life)",
    "cli.mesh_cmd.istiod (istiod, which `up` starts)",
    seconds,
    3600.0,
    blank_is_unset=False,
)
READY_TIMEOUT: Setting[float] = Setting(
    "TRUSTUSBANK_READY_TIMEOUT",
    "seconds a node proxy or pod may take to become ready",
    "runtime.supervisor.ready_timeout: `up`, rollouts, and (x3) the wait for a detached `up`",
    seconds,
    60.0,
    blank_is_unset=False,
)
ISOLATION: Setting[str] = Setting(
    "TRUSTUSBANK_ISOLATION",
    "how pods are isolated: `namespaces` (own network, mount and PID namespaces; refuses to start "
    "where the kernel does not allow it), `cooperative` (plain processes: not a security boundary), "
    "or `auto`: namespaces where possible",
    "runtime.sandbox (`up`)",
    isolation_mode,
    "auto",
)
POD_ZYGOTE: Setting[bool] = Setting(
    "TRUSTUSBANK_POD_ZYGOTE",
    "`0`: start every pod and node proxy as a fresh interpreter, not forked from the pod zygote "
    "(one process that has imported what pods share); a zygote that cannot start or dies falls back "
    "to fresh interpreters by itself, and says so in the runtime log",
    "runtime.supervisor (`up`)",
    off_when_zero,
    True,
)
HBONE_POOL: Setting[bool] = Setting(
    "TRUSTUSBANK_HBONE_POOL",
    "`0`: open one TLS connection per HBONE tunnel instead of pooling them, many CONNECT streams on one "
    "HTTP/2 connection per (source certificate, destination identity, destination address, source IP), "
    "as ztunnel pools; for comparing the two (benchmarks/mesh.py)",
    "mesh.hbone.pool: ztunnel outbound and the waypoint's egress (`up`)",
    off_when_zero,
    True,
    blank_is_unset=False,
)
PORT_FORWARDS: Setting[bool] = Setting(
    "TRUSTUSBANK_PORT_FORWARDS",
    "`0` disables the seed's local ports (chatbot 18009, attacker 18011, and the console's: 18001, "
    "18007, 18002, 18012, 18006, 15556); the console then serves on free ports, named by `status`",
    "runtime.supervisor (`up`)",
    off_when_zero,
    True,
    blank_is_unset=False,
)
CONSOLE_SIGNIN: Setting[bool] = Setting(
    "TRUSTUSBANK_CONSOLE_SIGNIN",
    "`0` turns off the sign-in in front of the console's pages (18001, 18007, 18002, 18012, 18006): "
    "no provider (15556), no front door, and anyone who can reach the pages reads them",
    "console.serve.signin_on: `up` (which sockets the console gets) and `console serve`",
    off_when_zero,
    True,
    blank_is_unset=False,
)

# -- workloads -------------------------------------------------------------------------------

ALLOWED_HOSTS: Setting[tuple[str, ...]] = Setting(
    "TRUSTUSBANK_ALLOWED_HOSTS",
    "extra Host headers an MCP server accepts (Service names and the waypoint's are accepted already)",
    "workloads.mcp_http.allowed_hosts (every MCP server)",
    comma_list,
    (),
)
MODEL_GULLIBILITY: Setting[str] = Setting(
    "TRUSTUSBANK_MODEL_GULLIBILITY",
    "how often the scripted model obeys an injection: `always`, `never`, `0.3`, `p=<0..1>,seed=<n>`",
    "agents.scripted.gullibility.from_env (serve model; parsed there by Gullibility.parse)",
    text,
    "always",
    strip=True,
)
AGENT_SPEC: Setting[str | None] = Setting(
    "TRUSTUSBANK_AGENT_SPEC",
    "the resolved kagent Agent: AgentSpec JSON, or a path to a JSON file",
    "agents.a2a.server.spec_from_env (serve agent; required)",
    text,
    None,
    default_doc="none: the agent refuses to start",
    set_by="the kagent controller step of `up` (manifests/kagent/controller.py), in the Deployment",
    strip=True,
)
AGENT_URL: Setting[str | None] = Setting(
    "TRUSTUSBANK_AGENT_URL",
    "the URL the agent's card advertises",
    "agents.a2a.server.spec_from_env (serve agent)",
    text,
    None,
    default_doc="the agent's Service",
)
AGENT_USER_TOKENS: Setting[Path | None] = Setting(
    "TRUSTUSBANK_AGENT_USER_TOKENS",
    "the identity provider whose ID tokens the agent accepts from people: a JSON file with its "
    "issuer, the audience (the console's client) and its public JWKS",
    "agents.a2a.user_tokens.from_env (serve agent)",
    path,
    None,
    default_doc="none: a request bearing a token is refused, UserGroup subjects match nobody",
    set_by="`up` (runtime/podspec.py), for kagent's agent pods, from the console's sign-in provider",
)
CHATBOT_AGENT: Setting[str | None] = Setting(
    "TRUSTUSBANK_CHATBOT_AGENT",
    "the agent the chat page talks to, <namespace>/<name>",
    "workloads.chatbot.app.create_app_from_env (serve chatbot; an empty value is used, and refused)",
    text,
    None,
    default_doc="trustusbank-bank-agents/support-bot (workloads.chatbot.names.DEFAULT_AGENT)",
    blank_is_unset=False,
)
CHATBOT_AGENTS: Setting[tuple[str, ...] | None] = Setting(
    "TRUSTUSBANK_CHATBOT_AGENTS",
    "the agents the chatbot's /api/a2a/ proxy may reach, <namespace>/<name>, comma-separated",
    "workloads.chatbot.app.create_app_from_env (serve chatbot); manifests.kagent.checks (kagent Agents only)",
    comma_list,
    None,
    default_doc="only the page's agent (TRUSTUSBANK_CHATBOT_AGENT)",
)
CHATBOT_UPSTREAM: Setting[str | None] = Setting(
    "TRUSTUSBANK_CHATBOT_UPSTREAM",
    "where agents live, an http(s) URL template with {namespace} and {agent} (e.g. kagent's A2A API)",
    "workloads.chatbot.app.create_app_from_env (serve chatbot)",
    text,
    None,
    default_doc="each agent's Service, through the mesh",
    strip=True,
)
SMTP_PORT: Setting[int] = Setting(
    "TRUSTUSBANK_SMTP_PORT",
    "the SOC inbox's SMTP port (on the pod's own address)",
    "workloads.soc_inbox.app.create_app_from_env (serve soc-inbox)",
    port,
    2525,
    blank_is_unset=False,
)

# -- the alert evaluator (serve alerts) -------------------------------------------------------

ALERTS_INTERVAL: Setting[str | None] = Setting(
    "TRUSTUSBANK_ALERTS_INTERVAL",
    "how often the evaluator scrapes and evaluates: seconds (`1.5`) or a duration (`1s500ms`)",
    "alerts.service.interval_from_env (parsed there by alerts.service.seconds)",
    text,
    None,
    default_doc="the rule group's interval",
)
ALERTS_SMTP: Setting[str | None] = Setting(
    "TRUSTUSBANK_ALERTS_SMTP",
    "where alert mail goes, host:port",
    "alerts.app.service_from_env (parsed there by alerts.service.smtp_address)",
    text,
    None,
    default_doc="none: no mail is sent",
)
ALERTS_GROUP_BY: Setting[tuple[str, ...] | None] = Setting(
    "TRUSTUSBANK_ALERTS_GROUP_BY",
    "labels alerts are grouped by for notification, comma-separated",
    "alerts.notifier.NotifyPolicy.from_env",
    comma_list,
    None,
    default_doc="alertname,offender (NotifyPolicy)",
)
ALERTS_GROUP_WAIT: Setting[str | None] = Setting(
    "TRUSTUSBANK_ALERTS_GROUP_WAIT",
    "how long a new group waits before its first notification, a duration (`0s`, `30s`)",
    "alerts.notifier.NotifyPolicy.from_env (parsed there by promql.durations.parse_duration)",
    text,
    None,
    default_doc="0s (NotifyPolicy)",
)
ALERTS_GROUP_INTERVAL: Setting[str | None] = Setting(
    "TRUSTUSBANK_ALERTS_GROUP_INTERVAL",
    "the least time between notifications of a group that gained an alert, a duration",
    "alerts.notifier.NotifyPolicy.from_env (parsed there by promql.durations.parse_duration)",
    text,
    None,
    default_doc="1s (NotifyPolicy)",
)
ALERTS_REPEAT_INTERVAL: Setting[str | None] = Setting(
    "TRUSTUSBANK_ALERTS_REPEAT_INTERVAL",
    "when an unchanged group is notified again, a duration",
    "alerts.notifier.NotifyPolicy.from_env (parsed there by promql.durations.parse_duration)",
    text,
    None,
    default_doc="4h (NotifyPolicy)",
)

# -- not TRUSTUSBANK_ names: the pods' own variables, read by project code ---------------------

FX_API_URL: Setting[str | None] = Setting(
    "FX_API_URL",
    "the FX rates API; unreachable -> bundled reference rates, logged",
    "workloads.vendor.converter.ConverterConfig.from_env (currency-converter)",
    text,
    None,
    default_doc="none: the bundled reference rates",
    external=True,
)
ACME_TELEMETRY_URL: Setting[str | None] = Setting(
    "ACME_TELEMETRY_URL",
    "where the rug-pulled builds send loot",
    "workloads.vendor.exfil_channel.attacker_url (rug-pulled currency-converter builds)",
    text,
    None,
    default_doc="the attacker's Service (exfil_channel.DEFAULT_ATTACKER_URL, baked into the malicious image)",
    external=True,
)
AGENTREGISTRY_CATALOGUE: Setting[Path | None] = Setting(
    "AGENTREGISTRY_CATALOGUE",
    "the registry's catalogue file (mounted from the ConfigMap)",
    "workloads.agentregistry.app.create_app_from_env (serve agentregistry)",
    existing_file,
    None,
    default_doc="none: the catalogue ConfigMap is read from the manifest bundle",
    external=True,
)
ANTHROPIC_API_KEY: Setting[str | None] = Setting(
    "ANTHROPIC_API_KEY",
    "the model key when no Secret in deploy/ holds it",
    "agents.model.factory, under the name the ModelConfig's apiKeySecretKey gives (this is the usual one)",
    text,
    None,
    default_doc="none: an Anthropic agent refuses to start",
    external=True,
)

SETTINGS: tuple[Setting[Any], ...] = (
    STATE_DIR,
    DEPLOY_DIR,
    POD_IP,
    TRACES_DIR,
    LOGS_DIR,
    TOPOLOGY,
    IMAGE,
    IMAGE_STORE,
    BUILD_VARIANT,
    SVID_TTL_SECONDS,
    READY_TIMEOUT,
    ISOLATION,
    POD_ZYGOTE,
    HBONE_POOL,
    PORT_FORWARDS,
    CONSOLE_SIGNIN,
    ALLOWED_HOSTS,
    MODEL_GULLIBILITY,
    AGENT_SPEC,
    AGENT_URL,
    AGENT_USER_TOKENS,
    CHATBOT_AGENT,
    CHATBOT_AGENTS,
    CHATBOT_UPSTREAM,
    SMTP_PORT,
    ALERTS_INTERVAL,
    ALERTS_SMTP,
    ALERTS_GROUP_BY,
    ALERTS_GROUP_WAIT,
    ALERTS_GROUP_INTERVAL,
    ALERTS_REPEAT_INTERVAL,
    FX_API_URL,
    ACME_TELEMETRY_URL,
    AGENTREGISTRY_CATALOGUE,
    ANTHROPIC_API_KEY,
)

BY_NAME: dict[str, Setting[Any]] = {s.name: s for s in SETTINGS}
if len(BY_NAME) != len(SETTINGS):
    raise ValueError("a setting is declared twice")
