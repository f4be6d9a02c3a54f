"""Local Beam: no TFX sdist for the DirectRunner, small inputs in one process."""

import os

from pipelines import beam_local

MULTI = ["--direct_running_mode=multi_processing", "--direct_num_workers=0"]


def test_flag_values_last_one_wins():
    args = ["--runner", "DataflowRunner", "--direct_running_mode=multi_processing", "--runner=DirectRunner"]
    assert beam_local.flag_value(args, "--runner") == "DirectRunner"
    assert beam_local.flag_value(args, "--project") is None
    assert beam_local.is_local(MULTI) and beam_local.is_local(["--runner=PrismRunner"])
    assert not beam_local.is_local(["--runner=DataflowRunner", "--project=p"])


def test_small_local_inputs_run_in_memory_and_large_or_remote_ones_do_not():
    small = beam_local.local_args(MULTI, file_count=600, in_process_below=2000)
    assert beam_local.flag_value(small, "--direct_running_mode") == "in_memory"
    assert beam_local.local_args(MULTI, file_count=2000, in_process_below=2000) == MULTI
    remote = ["--runner=DataflowRunner", *MULTI]
    assert beam_local.local_args(remote, file_count=10, in_process_below=2000) == remote
    threads = ["--direct_running_mode=multi_threading"]  # Chosen by the user: left alone.
    assert beam_local.local_args(threads, file_count=10, in_process_below=2000) == threads


def test_tfx_beam_executors_skip_the_sdist_only_for_local_runners(tmp_path, monkeypatch):
    """Through TFX's own BaseBeamExecutor: no --extra_package and nothing left in the temp dir."""
    from tfx.components.statistics_gen import executor as statistics_gen
    from tfx.dsl.components.base import base_beam_executor
    from tfx.utils import dependency_utils

    monkeypatch.setenv("TMPDIR", str(tmp_path))
    monkeypatch.setattr("tempfile.tempdir", None)
    built = dependency_utils.make_beam_dependency_flags
    with beam_local.without_tfx_sdist(MULTI):
        context = base_beam_executor.BaseBeamExecutor.Context(beam_pipeline_args=MULTI)
        executor = statistics_gen.Executor(context)
        assert not any(a.startswith("--extra_package") for a in executor._beam_pipeline_args)
        assert executor._beam_pipeline_args[: len(MULTI)] == MULTI
    assert dependency_utils.make_beam_dependency_flags is built  # Restored on exit.
    assert os.listdir(tmp_path) == []
    with beam_local.without_tfx_sdist(["--runner=DataflowRunner"]):
        assert dependency_utils.make_beam_dependency_flags is built  # Remote workers need TFX.
