"""Instance ids: unique per process, stable across restarts, whatever form they are given in."""

from __future__ import annotations

from processors.runtime.identity import instance_id, instance_number


def test_a_given_id_wins_in_any_form() -> None:
    assert instance_id({"OMS_INSTANCE_ID": "3"}, lambda: "oms-payments-0") == "3"
    assert instance_id({"OMS_INSTANCE_ID": "oms-payments-2"}, lambda: "laptop") == "oms-payments-2"


def test_a_stateful_set_pod_is_known_by_its_ordinal() -> None:
    assert instance_id({}, lambda: "oms-payments-2") == "2"
    assert instance_id({"OMS_INSTANCE_ID": " "}, lambda: "oms-sagas-11") == "11"


def test_otherwise_the_host_name_in_characters_kafka_ids_and_file_names_accept() -> None:
    assert instance_id({}, lambda: "worker.example") == "worker.example"
    assert instance_id({}, lambda: "build box/7") == "build_box_7"
    assert instance_id({"OMS_INSTANCE_ID": "a b"}, lambda: "x") == "a_b"


def test_numbered_instances_have_a_number() -> None:
    assert instance_number("0") == 0
    assert instance_number("12") == 12
    assert instance_number("oms-payments-1") is None
