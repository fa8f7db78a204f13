"""The Slurm executor's options and refusals, without a cluster: flags over the config file, one clear line for
each bad value, the jobs' sbatch parameters, node-local folders, and the failure rows of ended jobs."""

from __future__ import annotations

import pickle
import subprocess

import pytest

from dlbench.cli import main
from dlbench.errors import UsageError
from dlbench.sweep import slurm_jobs
from dlbench.sweep.slurm_jobs import JobState, ended_reason
from dlbench.sweep.slurm_options import SlurmOptions, check_options, slurm_options

SWEEP = ["sweep", "lr", "0.1", "--model", "mlp", "--dataset", "shapes"]


def test_flags_replace_the_config_file_which_replaces_the_defaults(tmp_path):
    config = tmp_path / "config.toml"
    config.write_text(
        '[slurm]\npartition = "gpu"\ntime = "2:00:00"\ncpus = 8\nmem = "32G"\n'
        'sbatch = ["mail-type=END", "--exclusive"]\nsetup = ["module load cuda"]\n'
    )
    opts = slurm_options({"cpus": 4, "time": "90"}, config)
    assert opts == SlurmOptions(
        partition="gpu",
        time_min=90,
        cpus=4,
        mem_gb=32.0,
        sbatch={"mail_type": "END", "exclusive": True},
        setup=["module load cuda"],
    )
    params = opts.executor_parameters()
    assert params["time"] == 90 and params["mem"] == "32GB" and params["partition"] == "gpu"
    assert params["additional_parameters"] == {"mail_type": "END", "exclusive": True}
    assert params["signal_delay_s"] == 120 and "gpus_per_node" not in params
    assert slurm_options({}, tmp_path / "absent.toml") == SlurmOptions()  # no file: the defaults


@pytest.mark.parametrize(
    ("flags", "message"),
    [
        ({"time": "1:30"}, "--slurm-time: give the time limit in minutes"),
        ({"time": "0"}, "--slurm-time"),
        ({"mem": "lots"}, "--slurm-mem: give the memory per job in GB"),
        ({"mem": "-2G"}, "--slurm-mem"),
        ({"cpus": 0}, "--slurm-cpus: give a whole number of at least 1"),
        ({"gpus": -1}, "--slurm-gpus: give a whole number of at least 0"),
        ({"sbatch": ["mail type=END"]}, "--slurm-sbatch: 'mail type=END' is not an sbatch option"),
        ({"partition": "a\nb"}, "--slurm-partition: give one line of text"),
        ({"array_parallelism": 0}, "--slurm-array-parallelism"),
    ],
)
def test_a_bad_flag_is_one_line_naming_it(flags, message, tmp_path):
    with pytest.raises(UsageError, match=message.replace("(", r"\(")):
        slurm_options(flags, tmp_path / "absent.toml")


def test_a_bad_config_file_names_the_file_and_the_key(tmp_path):
    config = tmp_path / "config.toml"
    config.write_text("[slurm]\npartiton = 'gpu'\n")
    with pytest.raises(UsageError, match=r"config.toml: unknown key 'partiton' in \[slurm\]; the keys are"):
        slurm_options({}, config)
    config.write_text("[slurm]\ncpus = 'many'\n")
    with pytest.raises(UsageError, match=r"config.toml: \[slurm\] cpus: give a whole number"):
        slurm_options({}, config)
    config.write_text("[slurm\ncpus = 2\n")
    with pytest.raises(UsageError, match="not valid TOML"):
        slurm_options({}, config)


def test_a_signal_delay_past_the_time_limit_is_refused():
    check_options(SlurmOptions(time_min=1))  # default delay: a quarter of a short limit
    with pytest.raises(UsageError, match="signal delay .* must be shorter than the time limit"):
        check_options(SlurmOptions(time_min=1, signal_delay_s=60))


def test_slurm_flags_need_the_slurm_executor_and_slurm(tmp_path, monkeypatch, capsys):
    with pytest.raises(SystemExit) as exit_:
        main([*SWEEP, "--slurm-cpus", "2"])
    assert exit_.value.code == 2
    assert capsys.readouterr().err.strip() == (
        "error: --slurm-cpus is for --executor slurm; add --executor slurm"
    )
    with pytest.raises(SystemExit):
        main([*SWEEP, "--detach"])
    assert "--detach is for --executor slurm" in capsys.readouterr().err
    monkeypatch.setenv("PATH", str(tmp_path))  # no sinfo, sbatch or sacct here
    monkeypatch.setenv("DLBENCH_CONFIG", str(tmp_path / "none.toml"))
    with pytest.raises(SystemExit) as exit_:
        main([*SWEEP, "--executor", "slurm"])
    err = capsys.readouterr().err
    assert exit_.value.code == 2 and err.count("\n") == 1
    assert "--executor slurm needs Slurm's commands (sbatch, sacct) on this machine" in err
    with pytest.raises(SystemExit):
        main([*SWEEP, "--executor", "slurm", "--device", "cuda"])
    assert "--device cuda needs a GPU in each job: add --slurm-gpus 1" in capsys.readouterr().err
    assert not (tmp_path / "cache").exists()


def test_node_local_folders_are_named_only_on_a_cluster_of_several_nodes(tmp_path):
    from dlbench.sweep.slurm import node_local_warnings

    folders = {"cache folder": "/tmp/x/cache", "data folder": "/srv/shared/data"}
    assert node_local_warnings(folders, nodes=1) == []
    (line,) = node_local_warnings(folders, nodes=4)
    assert line.startswith(
        "the cache folder /tmp/x/cache may be local to this machine, and this cluster has 4"
    )
    assert "--cache-dir" in line


def _job_files(folder, job_id, result=None, stderr=""):
    folder.mkdir(parents=True, exist_ok=True)
    (folder / f"{job_id}_0_log.err").write_text(stderr)
    if result is not None:
        (folder / f"{job_id}_0_result.pkl").write_bytes(pickle.dumps(result))
    return {"job_id": job_id, "log_dir": str(folder)}


def test_an_ended_job_gives_its_reason_and_the_tail_of_its_log(tmp_path):
    log = "submitit INFO (x) - Starting\n" + "".join(f"line {i}\n" for i in range(10))
    log += "submitit WARNING (x) - Bypassing signal SIGTERM\n"
    record = _job_files(tmp_path / "a", "7", stderr=log + "slurmstepd: error: *** JOB 7 CANCELLED ***\n")
    status, message = ended_reason(record, JobState("CANCELLED"))
    assert status == "cancelled" and message.startswith(
        "its job was cancelled (scancel, or an administrator)"
    )
    assert f"job 7, log {tmp_path / 'a' / '7_0_log.err'}: line 5 | line 6" in message
    assert message.endswith("*** JOB 7 CANCELLED ***") and "submitit " not in message

    assert ended_reason(_job_files(tmp_path / "b", "8"), JobState("OUT_OF_MEMORY"))[0] == "oom"
    assert "raise --slurm-time" in ended_reason(_job_files(tmp_path / "c", "9"), JobState("TIMEOUT"))[1]
    raised = _job_files(tmp_path / "d", "10", result=("error", "Traceback ...\nValueError: bad thing\n"))
    assert ended_reason(raised, JobState("FAILED"))[1].startswith(
        "its job raised ValueError: bad thing; job 10"
    )
    refused = _job_files(tmp_path / "e", "11", result=("success", {"error": "no CUDA GPU"}))
    assert ended_reason(refused, JobState("COMPLETED"))[1].startswith("the trial was refused: no CUDA GPU")


def test_job_states_come_from_sacct_and_squeue_where_there_is_no_accounting(monkeypatch):
    calls = []

    def fake_run(command, **kw):
        calls.append(command[0])
        if command[0] == "sacct":
            return subprocess.CompletedProcess(command, 1, "", "accounting storage is disabled")
        return subprocess.CompletedProcess(command, 0, "5|RUNNING|node3|None\n", "")

    monkeypatch.setattr(slurm_jobs.subprocess, "run", fake_run)
    states = slurm_jobs.job_states(["5", "6"])
    assert calls == ["sacct", "squeue"]
    assert states == {"5": JobState("RUNNING", "node3"), "6": JobState("ENDED")}
    assert states["5"].running and not states["6"].queued

    def sacct(command, **kw):
        return subprocess.CompletedProcess(
            command, 0, "5|CANCELLED by 0|node3|None\n6_1|PENDING|None assigned|Resources\n", ""
        )

    monkeypatch.setattr(slurm_jobs.subprocess, "run", sacct)
    assert slurm_jobs.job_states(["5", "6_1", "9"]) == {
        "5": JobState("CANCELLED", "node3"),
        "6_1": JobState("PENDING", "None assigned", "Resources"),
        "9": JobState("UNKNOWN"),
    }


def test_an_unknown_partition_is_refused_before_anything_is_submitted(tmp_path, monkeypatch, capsys):
    sinfo = tmp_path / "sinfo"
    sinfo.write_text("#!/bin/sh\necho 'debug*'\necho gpu\n")
    sinfo.chmod(0o755)
    monkeypatch.setenv("PATH", str(tmp_path))  # this sinfo, and no sbatch: nothing can be submitted
    monkeypatch.setenv("DLBENCH_CONFIG", str(tmp_path / "none.toml"))
    with pytest.raises(SystemExit) as exit_:
        main([*SWEEP, "--executor", "slurm", "--slurm-partition", "nope", "--cache-dir", str(tmp_path / "c")])
    assert exit_.value.code == 2
    assert capsys.readouterr().err == (
        "error: --slurm-partition nope: this cluster has no such partition; it has: debug, gpu\n"
    )
    assert not (tmp_path / "c").exists()
