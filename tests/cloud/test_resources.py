"""The pure parts of the ModelArts vocabulary: states, outputs, schedules, drift, OBS locations, error codes."""

from __future__ import annotations

import datetime

import pytest
from pydantic import ValidationError

from modelarts_operator.cloud import ModelArtsApi
from modelarts_operator.cloud import modelarts as modelarts_package
from modelarts_operator.cloud.errors import MODELARTS_CODES, ErrorKind, register_codes
from modelarts_operator.cloud.modelarts import algorithms, services, training, transport
from modelarts_operator.cloud.obs import ObsUrl
from modelarts_operator.cloud.resources import (
    AlgorithmSpec,
    JobPhase,
    Model,
    ModelSpec,
    ModelStatus,
    Service,
    ServiceModelConfig,
    ServiceSpec,
    ServiceStatus,
    TrainingJob,
    TrainingJobSpec,
)


def job(phase: str | None = None, outputs: dict[str, str] | None = None) -> TrainingJob:
    return TrainingJob.from_api({
        "metadata": {"id": "j-1", "name": "job"},
        "status": {"phase": phase} if phase is not None else {},
        "algorithm": {"outputs": [{"name": k, "remote": {"obs": {"obs_url": v}}} for k, v in (outputs or {}).items()]},
    })


# --- states ------------------------------------------------------------------------------------


def test_known_states_parse_to_members_that_equal_their_wire_strings():
    assert job("Running").phase is JobPhase.RUNNING
    assert job("Running").phase == "Running" and f"{job('Running').phase}" == "Running"
    assert str(JobPhase.COMPLETED) == "Completed"
    assert Model(model_id="m", model_status="published").model_status is ModelStatus.PUBLISHED
    assert Service(service_id="s", status="deploying").status is ServiceStatus.DEPLOYING
    assert Service(service_id="s", status="running").model_dump(mode="json")["status"] == "running"


@pytest.mark.parametrize(("parse", "raw"), [
    (lambda v: job(v).phase, "Queued"),
    (lambda v: Model(model_id="m", model_status=v).model_status, "importing_v2"),
    (lambda v: Service(service_id="s", status=v).status, "upgrading"),
])
def test_unknown_states_keep_the_raw_string(parse, raw):
    state = parse(raw)
    assert state == raw and str(state) == raw and f"{state}" == raw
    assert state not in list(type(state))  # not a declared member, yet it parsed


def test_a_missing_state_is_the_empty_string():
    assert job().phase == "" and not job().phase
    assert Service(service_id="s").status == ""


@pytest.mark.parametrize(("phase", "finished"), [
    ("Creating", False), ("Pending", False), ("Running", False), ("Terminating", False), ("", False),
    ("SomethingNew", False), ("Completed", True), ("Failed", True), ("Abnormal", True), ("Terminated", True),
])
def test_finished(phase, finished):
    assert job(phase).finished is finished


# --- training outputs --------------------------------------------------------------------------


def test_output_is_the_channels_obs_folder_and_its_version():
    answer = job("Running", {"train_url": "/test-modelarts/mnist-model/V0003/", "logs": "/test-modelarts/logs"})
    assert answer.output("train_url") == ObsUrl("test-modelarts", "mnist-model/V0003/")
    assert answer.output_version("train_url") == "V0003"
    assert answer.output("logs") == ObsUrl("test-modelarts", "logs/")  # always a folder
    assert answer.output_version("logs") is None
    assert answer.output("missing") is None and answer.output_version("missing") is None


def test_output_tolerates_odd_answers():
    answer = job("Running", {"empty": "", "noslash": "/bkt/out/V0012", "bad": "/Not A Bucket/x/"})
    assert answer.output("empty") is None
    assert answer.output_version("noslash") == "V0012"
    assert answer.output("bad") is None


# --- OBS locations in specs --------------------------------------------------------------------


def test_specs_take_obs_urls_obs_strings_or_api_paths_and_send_api_paths():
    code = ObsUrl("bkt", "code/")
    by_url = AlgorithmSpec(name="a", code_dir=code, boot_file=code.join("train.py"))
    by_path = AlgorithmSpec(name="a", code_dir="/bkt/code/", boot_file="obs://bkt/code/train.py")
    assert by_url.body() == by_path.body()
    assert by_url.body()["job_config"]["code_dir"] == "/bkt/code/"
    assert by_url.body()["job_config"]["boot_file"] == "/bkt/code/train.py"

    spec = TrainingJobSpec(name="j", algorithm_id="a", inputs={"data_url": "obs://bkt/data/"},
                           outputs={"train_url": ObsUrl("bkt", "out/V0001/")})
    algorithm = spec.body()["algorithm"]
    assert algorithm["inputs"] == [{"name": "data_url", "remote": {"obs": {"obs_url": "/bkt/data/"}}}]
    assert algorithm["outputs"] == [{"name": "train_url", "remote": {"obs": {"obs_url": "/bkt/out/V0001/"}}}]
    assert spec.model_dump()["outputs"] == {"train_url": "/bkt/out/V0001/"}

    assert ModelSpec(name="m", source_location=ObsUrl("bkt", "out/V0001/")).body()["source_location"] == "/bkt/out/V0001/"
    with pytest.raises(ValidationError):
        ModelSpec(name="m", source_location="obs://UPPER/x")


# --- schedules ---------------------------------------------------------------------------------


@pytest.mark.parametrize(("after", "unit", "duration"), [
    (datetime.timedelta(minutes=30), "MINUTES", 30),
    (datetime.timedelta(minutes=90), "MINUTES", 90),
    (datetime.timedelta(hours=2), "HOURS", 2),
    (datetime.timedelta(hours=36), "HOURS", 36),
    (datetime.timedelta(days=1), "DAYS", 1),
    (datetime.timedelta(hours=48), "DAYS", 2),
])
def test_auto_stop_takes_the_largest_exact_unit(after, unit, duration):
    spec = ServiceSpec(name="s", model_id="m", auto_stop=after)
    assert spec.schedule() == [{"type": "stop", "time_unit": unit, "duration": duration}]
    assert spec.body()["schedule"] == spec.schedule()  # create carries the schedule


def test_no_auto_stop_means_no_schedule():
    spec = ServiceSpec(name="s", model_id="m")
    assert spec.schedule() == [] and "schedule" not in spec.body()


@pytest.mark.parametrize("after", [datetime.timedelta(seconds=90), datetime.timedelta(0), datetime.timedelta(hours=-1)])
def test_auto_stop_must_be_whole_positive_minutes(after):
    with pytest.raises(ValidationError, match="whole number of minutes"):
        ServiceSpec(name="s", model_id="m", auto_stop=after)


# --- drift -------------------------------------------------------------------------------------


def test_matches_lists_what_differs():
    want = ServiceSpec(name="s", model_id="m2", instance_count=2)
    running = Service(service_id="x", status="running",
                      config=[ServiceModelConfig(model_id="m2", instance_count=2)], schedule=[])
    assert running.matches(want) == []
    assert running.matches(want.model_copy(update={"auto_stop": datetime.timedelta(hours=1)})) == ["autoStop"]
    scaled = running.model_copy(update={"config": [ServiceModelConfig(model_id="m2", instance_count=1)]})
    assert scaled.matches(want) == ["instanceCount"]
    old_model = running.model_copy(update={"config": [ServiceModelConfig(model_id="m1", instance_count=1)]})
    assert old_model.matches(want) == ["model"]  # the instance count goes with the new model's config
    assert Service(service_id="x").matches(want) == ["model"]  # no config at all


def test_matches_compares_schedules_by_duration_not_by_spelling():
    want = ServiceSpec(name="s", model_id="m", auto_stop=datetime.timedelta(hours=2))
    config = [ServiceModelConfig(model_id="m", instance_count=1)]

    def service(schedule):
        return Service(service_id="x", config=config, schedule=schedule)

    assert service([{"type": "stop", "time_unit": "HOURS", "duration": 2, "extra": "ignored"}]).matches(want) == []
    assert service([{"type": "stop", "time_unit": "MINUTES", "duration": "120"}]).matches(want) == []
    assert service([{"type": "stop", "time_unit": "HOURS", "duration": 3}]).matches(want) == ["autoStop"]
    assert service([{"type": "stop", "time_unit": "FORTNIGHTS", "duration": 1}]).matches(want) == ["autoStop"]
    assert service(None).matches(want) == ["autoStop"]
    assert service([{"type": "stop", "time_unit": "HOURS", "duration": 2}]).matches(
        want.model_copy(update={"auto_stop": None})) == ["autoStop"]


# --- the client's shape ------------------------------------------------------------------------


def test_each_code_is_declared_by_exactly_one_family_and_all_are_registered():
    declared = [transport.CODES, algorithms.CODES, training.CODES, services.CODES]
    codes = [code for family in declared for code in family]
    assert len(codes) == len(set(codes))
    assert MODELARTS_CODES == {code: kind for family in declared for code, kind in family.items()}
    register_codes({"ModelArts.2775": ErrorKind.NOT_FOUND})  # the same meaning again: harmless
    with pytest.raises(ValueError, match="already registered"):
        register_codes({"ModelArts.2775": ErrorKind.CONFLICT})


def test_model_arts_api_is_importable_both_ways_and_rejects_mixed_calls_before_any_call():
    assert modelarts_package.ModelArtsApi is ModelArtsApi
    api = ModelArtsApi(lambda: pytest.fail("no cloud call expected"))
    with pytest.raises(ValueError, match="unknown kind 'widgets'"):
        api.count("widgets")
    with pytest.raises(TypeError, match="not both"):
        api.update_service("x", ServiceSpec(name="s", model_id="m"), status="stopped")
