import json
import os
import pathlib
import signal
import subprocess
import sys
import urllib.request

import pytest

from chat.simulator import add_server_arguments, defaults_from_arguments

PROJECT_ROOT = pathlib.Path(__file__).resolve().parents[2]


def test_module_runs_and_stops():
    env = {**os.environ, "PYTHONPATH": str(PROJECT_ROOT)}
    process = subprocess.Popen(
        [sys.executable, "-m", "chat.simulator", "--port", "0", "--token-rate", "0"],
        cwd=PROJECT_ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    try:
        line = process.stdout.readline()
        assert line.startswith("chat.simulator listening on http://127.0.0.1:")
        url = line.split()[-1]
        with urllib.request.urlopen(f"{url}/_sim/health", timeout=10) as response:
            assert json.load(response) == {"ok": True}
    finally:
        process.send_signal(signal.SIGTERM)
        exit_code = process.wait(timeout=10)
    assert exit_code == 0


def test_arguments_defaults():
    import argparse

    parser = argparse.ArgumentParser()
    add_server_arguments(parser)
    args = parser.parse_args([])
    assert (args.host, args.port, args.api_key) == ("127.0.0.1", 8300, None)
    assert (args.token_rate, args.queue_delay, args.keepalive_interval) == (30.0, 0.0, 5.0)
    assert args.flavor == "deepseek"


def test_invalid_keepalive_rejected():
    with pytest.raises(ValueError, match="--keepalive-interval must be > 0"):
        defaults_from_arguments(30, 0, 0, "deepseek")


def test_management_command_parses_options():
    from chat.management.commands.runsimulator import Command

    parser = Command().create_parser("manage.py", "runsimulator")
    options = parser.parse_args(
        ["--port", "9000", "--api-key", "k", "--token-rate", "0", "--flavor", "vllm"]
    )
    assert (options.port, options.api_key, options.token_rate, options.flavor) == (
        9000,
        "k",
        0.0,
        "vllm",
    )
