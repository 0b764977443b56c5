"""CPU threads (issue 29, item 1): every command takes --threads N and $LGRNET_THREADS, applied before
any compute; the lgrnet command makes OpenMP's idle threads sleep (OMP_WAIT_POLICY=PASSIVE, set before
PyTorch loads libgomp), which keeps a busy machine from multiplying the run time; `lgrnet info` says
what is used and why."""
from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
import torch

from lgrnet import runtime
from lgrnet.cli import build_parser, main


def test_choice_order_option_then_env_then_omp_then_auto():
    env = {"LGRNET_THREADS": "3", "OMP_NUM_THREADS": "5"}
    assert runtime.choose_threads("2", env, cores=8) == runtime.ThreadChoice(2, "--threads", "--threads 2")
    assert runtime.choose_threads(None, env, cores=8).threads == 3
    assert runtime.choose_threads(None, {"OMP_NUM_THREADS": "5"}, cores=8).source == "OMP_NUM_THREADS"
    auto = runtime.choose_threads(None, {}, cores=6)
    assert (auto.threads, auto.source) == (6, "auto")
    assert runtime.choose_threads("auto", {"LGRNET_THREADS": "auto"}, cores=4).threads == 4
    for bad in ("0", "-1", "two"):
        with pytest.raises(ValueError, match="a number of CPU threads"):
            runtime.choose_threads(bad, {}, cores=2)


def test_prepare_openmp_sets_passive_unless_the_user_chose():
    env = {}
    assert runtime.prepare_openmp(env)["source"] == "lgrnet default" and env["OMP_WAIT_POLICY"] == "PASSIVE"
    for user in ({"OMP_WAIT_POLICY": "ACTIVE"}, {"GOMP_SPINCOUNT": "10000"}):
        env = dict(user)
        assert runtime.prepare_openmp(env)["source"] == "environment" and env == user


def _commands_and_subcommands(parser):
    for action in parser._actions:
        if action.__class__.__name__ == "_SubParsersAction":
            for name, sub in action.choices.items():
                yield name, sub
                for inner, subsub in _commands_and_subcommands(sub):
                    yield f"{name} {inner}", subsub


def test_every_command_takes_threads():
    found = dict(_commands_and_subcommands(build_parser()))
    assert {"predict", "evaluate", "train", "demo", "view", "export", "score", "dataset from-results"} <= set(found)
    for name, p in found.items():
        assert any("--threads" in a.option_strings for a in p._actions), name


@pytest.mark.parametrize("how", ["option", "env", "subcommand option"])
def test_threads_are_applied_before_the_command_runs(monkeypatch, how):
    from lgrnet.commands import dataset, presets

    seen = []
    monkeypatch.setattr(presets, "run", lambda args: seen.append(torch.get_num_threads()) or 0)
    monkeypatch.setattr(dataset, "run", lambda args: seen.append(torch.get_num_threads()) or 0)
    monkeypatch.delenv("LGRNET_THREADS", raising=False)
    torch.set_num_threads(2)
    if how == "option":
        assert main(["presets", "--threads", "1"]) == 0
    elif how == "env":
        monkeypatch.setenv("LGRNET_THREADS", "1")
        assert main(["presets"]) == 0
    else:
        assert main(["dataset", "check", "somewhere", "--threads", "1"]) == 0
    assert seen == [1]


def test_bad_threads_value_is_one_line(monkeypatch, capsys):
    monkeypatch.setenv("LGRNET_THREADS", "many")
    assert main(["presets"]) == 2
    err = capsys.readouterr().err
    assert err.strip() == "lgrnet presets: error: LGRNET_THREADS 'many': a number of CPU threads (1, 2, ...) or auto"


SPIN = r"""
import json, sys, time
if sys.argv[1] == "cli":
    from lgrnet.cli import main
    main(["presets", "--threads", "2"])   # what every lgrnet command does first
import torch
torch.set_num_threads(2)
x = torch.ones(1 << 18)
for _ in range(5):
    x.mul(2)
m0, p0 = time.thread_time(), time.process_time()
for _ in range(40):   # 40 short parallel regions with pauses between: idle workers spin or sleep
    x.mul(2)
    time.sleep(0.003)
main_cpu = time.thread_time() - m0
print(json.dumps({"workers_cpu": time.process_time() - p0 - main_cpu}))
"""


def _workers_cpu(mode: str, **env) -> float:
    full = {k: v for k, v in os.environ.items() if k not in ("OMP_WAIT_POLICY", "GOMP_SPINCOUNT", "OMP_NUM_THREADS",
                                                             "LGRNET_THREADS")}
    r = subprocess.run([sys.executable, "-c", SPIN, mode], capture_output=True, text=True, env={**full, **env},
                       timeout=300)
    assert r.returncode == 0, r.stderr
    return json.loads(r.stdout.strip().splitlines()[-1])["workers_cpu"]


@pytest.mark.skipif(runtime.usable_cores() < 2, reason="libgomp throttles spinning on one core")
def test_idle_openmp_threads_sleep_under_the_lgrnet_command():
    """The OpenMP workers of a process started through the command use (almost) no CPU between
    parallel regions. Control: the same loop with libgomp's default (spin 300,000 turns) burns the
    pauses; measured on the 2-core machine, busy (100 regions): 0.002-0.003 s against 0.47-0.53 s."""
    sleeping = _workers_cpu("cli")
    spinning = _workers_cpu("plain")
    assert sleeping < 0.05, sleeping
    assert spinning > 5 * max(sleeping, 0.01), (spinning, sleeping)
    assert _workers_cpu("cli", OMP_WAIT_POLICY="ACTIVE") > 5 * max(sleeping, 0.01)  # the user's choice stands


def test_info_says_threads_and_wait_policy(monkeypatch):
    monkeypatch.delenv("OMP_WAIT_POLICY", raising=False)
    monkeypatch.delenv("GOMP_SPINCOUNT", raising=False)
    env = {k: v for k, v in os.environ.items() if k not in ("OMP_WAIT_POLICY", "GOMP_SPINCOUNT", "OMP_NUM_THREADS")}
    r = subprocess.run([sys.executable, "-m", "lgrnet", "info", "--json", "--threads", "1"], capture_output=True,
                       text=True, env=env, timeout=300)
    assert r.returncode == 0, r.stderr
    info = json.loads(r.stdout)
    t = info["thread_settings"]
    assert info["threads"] == 1 and t["source"] == "--threads" and t["usable_cores"] >= 1
    assert t["openmp"] == {"OMP_WAIT_POLICY": "PASSIVE", "source": "lgrnet default"}
