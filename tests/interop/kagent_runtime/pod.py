"""An agent pod's main process, run by kagent-adk's Python, not the project's.

What `kagent-adk static --filepath /config` does in a kagent pod: read the config the
controller rendered (config.json, agent-card.json), build the ADK agent with
`AgentConfig.to_agent` and serve it over A2A with `KAgentApp`. Two things differ, both
outside the agent: sessions and tasks are kept in memory (`build(local=True)`, as
`kagent-adk run --local` does) because there is no kagent controller to keep them, and
uvicorn serves a socket the test bound and listens on, so the port is known before it
starts; "ready" on the pipe the test passed says the app has started.

Usage: python pod.py <config dir> <listening socket fd> <ready pipe fd>
"""

import json
import os
import socket
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import uvicorn
from a2a.types import AgentCard
from kagent.adk import AgentConfig, KAgentApp


def main(config_dir: Path, fd: int, ready_fd: int) -> None:
    @asynccontextmanager
    async def say_ready(_: Any) -> AsyncIterator[None]:
        with os.fdopen(ready_fd, "wb") as ready:
            ready.write(b"ready\n")
        yield

    config = AgentConfig.model_validate(json.loads((config_dir / "config.json").read_text()))
    card = AgentCard.model_validate(json.loads((config_dir / "agent-card.json").read_text()))
    # kagent's KAgentConfig: KAGENT_NAME with "-" as "_", the app "<namespace>__NS__<name>".
    name = os.environ["KAGENT_NAME"].replace("-", "_")
    app_name = os.environ["KAGENT_NAMESPACE"].replace("-", "_") + "__NS__" + name
    app = KAgentApp(
        lambda: config.to_agent(name),
        card,
        os.environ["KAGENT_URL"],
        app_name,
        lifespan=say_ready,
        stream=bool(config.stream),
        agent_config=config,
    ).build(local=True)
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning"))
    server.run(sockets=[socket.socket(fileno=fd)])


if __name__ == "__main__":
    main(Path(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3]))
