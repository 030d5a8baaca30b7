"""Telemetry from the command line (issue 10): a step started on its equipment, the alarm
its sensor raised listed, and acknowledged with a signature — a real ``v2v`` process on a
real database. The alarm itself is raised by the monitor's rules in this process (the
MQTT path is tests/integration/test_telemetry_mqtt.py)."""

from __future__ import annotations

from datetime import timedelta

from tests import network
from tests.e2e.test_cli_records import Plant, as_json, plant, started, words  # noqa: F401
from tests.network import PASSWORD, equipment_for
from vein2vein.domain.telemetry import Reading
from vein2vein.telemetry.monitor import Monitor

INCUBATOR = equipment_for("incubator")


def test_a_step_started_on_its_equipment_its_alarm_listed_and_acknowledged(
    plant: Plant,  # noqa: F811 (the fixture imported above)
) -> None:
    op = started(plant)
    for step in ("receipt", "selection_activation", "transduction"):
        network.record(plant.app, plant.lot, step)
    missing = op("step", "start", plant.lot, "expansion", "--equipment", INCUBATOR,
                 "--scan", "not-the-label", code=2)  # fmt: skip
    assert "error[invalid-scan]" in missing.stderr
    done = op("step", "start", plant.lot, "expansion", "--equipment", INCUBATOR,
              "--scan", plant.scan)  # fmt: skip
    assert (f"batch {plant.lot}: step expansion started on {INCUBATOR} (watching "
            "temperature, co2, humidity)") in words(done.stdout)  # fmt: skip
    busy = op("step", "start", plant.lot, "expansion", "--equipment", INCUBATOR,
              "--scan", plant.scan, code=4)  # fmt: skip
    assert f"equipment {INCUBATOR} runs step expansion of batch {plant.lot}" in words(busy.stderr)

    assert "0 alarm(s) to acknowledge" in op("telemetry", "alarms").stdout
    monitor = Monitor(plant.app)
    monitor.refresh(force=True)
    t0 = plant.app.clock.now()
    for i in range(12):  # six minutes above 38 °C
        monitor.check(Reading("CP1", INCUBATOR, "temperature", t0 + timedelta(seconds=30 * i),
                              38.6, "°C", i))  # fmt: skip
    listed = words(op("telemetry", "alarms").stdout)
    assert f"{INCUBATOR} temperature high 38.6 → DEV-" in listed and "36–38 °C" in listed
    assert "1 alarm(s) to acknowledge" in listed
    [alarm] = as_json(op("telemetry", "alarms", "--json"))
    assert (alarm["lot"], alarm["step_id"], alarm["kind"]) == (plant.lot, "expansion", "high")

    second = plant("operator2.cp1")
    acked = second("telemetry", "ack", str(alarm["id"]), "--comment", "door left open; shut",
                   input=f"operator2.cp1\n{PASSWORD}\n")  # fmt: skip
    assert f"alarm {alarm['id']} (temperature on {INCUBATOR}) acknowledged by operator2.cp1, " \
           "signed" in words(acked.stdout)  # fmt: skip
    again = second("telemetry", "ack", str(alarm["id"]), "--comment", "again",
                   input=f"{PASSWORD}\n", code=4)  # fmt: skip
    assert "was acknowledged by operator2.cp1" in again.stderr
    assert "0 alarm(s) to acknowledge" in op("telemetry", "alarms").stdout
    assert "operator2.cp1" in op("telemetry", "alarms", "--all").stdout
    absent = op("telemetry", "ack", "999", "--comment", "x", code=3,
                input=f"operator.cp1\n{PASSWORD}\n")  # fmt: skip
    assert "no alarm 999" in absent.stderr


def test_an_ingest_on_an_mqtt_version_not_spoken_is_refused(
    plant: Plant,  # noqa: F811 (the fixture imported above)
) -> None:
    for workers in ("1", "2"):
        refused = plant("operator.cp1")(
            "telemetry", "ingest", "--mqtt-version", "4", "--workers", workers, "--seconds", "1",
            code=2,
        )  # fmt: skip
        assert "MQTT version '4': expected one of 5, 3.1.1" in words(refused.stderr)
