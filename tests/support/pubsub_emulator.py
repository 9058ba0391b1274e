"""The real Pub/Sub emulator (gcloud's cloud-pubsub-emulator, a Java process) for tests.

`pubsub_emulator()` starts it on a free loopback port in its own process group, waits until it answers HTTP
(about 1 s here), yields its `host:port` and kills the whole group afterwards. Start it once per test module
(a module-scoped fixture): state is isolated per test by using distinct project ids. Without the emulator or
java the test is skipped with the reason printed.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

EMULATOR = Path("/usr/lib/google-cloud-sdk/platform/pubsub-emulator/bin/cloud-pubsub-emulator")
STARTUP_SECONDS = 60.0


def find_emulator() -> Path | None:
    candidates = [EMULATOR]
    gcloud = shutil.which("gcloud")
    if gcloud:
        root = Path(gcloud).resolve().parent.parent
        candidates.append(root / "platform/pubsub-emulator/bin/cloud-pubsub-emulator")
    return next((c for c in candidates if c.is_file()), None)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def answers(host: str) -> bool:
    try:
        with urllib.request.urlopen(f"http://{host}/", timeout=1) as response:
            return bool(response.status == 200)
    except OSError:
        return False


@contextmanager
def pubsub_emulator(tmp_dir: Path) -> Iterator[str]:
    """Run the emulator; yields "127.0.0.1:PORT"."""
    emulator = find_emulator()
    java_home = os.environ.get("JAVA_HOME", "")
    has_java = shutil.which("java") is not None or (bool(java_home) and (Path(java_home) / "bin/java").is_file())
    if emulator is None or not has_java:
        reason = "Pub/Sub emulator not installed (gcloud components install pubsub-emulator)" if emulator is None \
            else "java not found (the Pub/Sub emulator needs a Java runtime)"
        print(f"skipping: {reason}")
        pytest.skip(reason)
    host = f"127.0.0.1:{free_port()}"
    log = (tmp_dir / "pubsub-emulator.log").open("wb")
    address, port = host.split(":")
    process = subprocess.Popen([str(emulator), f"--host={address}", f"--port={port}"], cwd=tmp_dir, stdout=log,
                               stderr=subprocess.STDOUT, start_new_session=True)
    try:
        deadline = time.monotonic() + STARTUP_SECONDS
        while not answers(host):
            if process.poll() is not None or time.monotonic() > deadline:
                log.flush()
                tail = (tmp_dir / "pubsub-emulator.log").read_text(errors="replace")[-2000:]
                pytest.fail(f"Pub/Sub emulator did not start on {host}:\n{tail}")
            time.sleep(0.1)
        yield host
    finally:
        try:
            os.killpg(process.pid, signal.SIGTERM)
            process.wait(timeout=10)
        except ProcessLookupError:
            pass
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()
        log.close()



def emulator_fixture() -> Any:
    """A module-scoped pytest fixture yielding a running emulator's host (a Java start takes about a second;
    tests use distinct projects): `emulator = emulator_fixture()` in the test module."""

    @pytest.fixture(scope="module")
    def emulator(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
        with pubsub_emulator(tmp_path_factory.mktemp("pubsub")) as host:
            yield host

    return emulator
