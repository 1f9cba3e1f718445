"""HL7 v2.5.1 to the LIS: the ORU^R01 of a signed case validates and parses with hl7apy, carries the LOINC codes,
is ACKed by a real MLLP listener on 127.0.0.1 (hl7apy's server, started here), and stays queued and visible when
the listener refuses or does not answer."""

from __future__ import annotations

import socket
import threading

import pytest
from conftest import drop, make_window, signer, solid_images
from fakes import FakeClassifier
from hl7apy.mllp import AbstractHandler, MLLPServer
from hl7apy.parser import parse_message
from test_records import CLASSES, RANGES, signed_case

from wbc_desktop.core.case import case_report
from wbc_desktop.lis.codes import RESULT_CODES, loinc_check_digit_ok
from wbc_desktop.lis.hl7 import HL7Error, ResultHeader, check_ack, oru_message, parse
from wbc_desktop.lis.outbox import Destination, Outbox
from wbc_desktop.lis.send import queue_case

received: list[str] = []


class AckHandler(AbstractHandler):
    """The LIS side: keep the message, answer AA with its control ID."""

    def reply(self):
        message = parse_message(self.incoming_message)
        received.append(self.incoming_message)
        control_id = message.msh.msh_10.value
        ack = f"MSH|^~\\&|LIS||WBC Desktop||20261203090000||ACK^R01^ACK|A{control_id}|P|2.5.1\rMSA|AA|{control_id}\r"
        return f"\x0b{ack}\x1c\r"  # the handler frames its own answer (hl7apy's to_mllp)


@pytest.fixture
def listener():
    """A real MLLP listener on a free port of 127.0.0.1."""
    received.clear()
    server = MLLPServer("127.0.0.1", 0, {"ORU^R01^ORU_R01": (AckHandler,)}, timeout=5)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server.server_address[1]
    server.shutdown()
    server.server_close()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_every_loinc_code_has_a_valid_check_digit():
    codes = [code for pair in RESULT_CODES.values() for code in pair if code is not None and code.system == "LN"]
    assert len(codes) >= 20 and all(loinc_check_digit_ok(code.code) for code in codes)
    assert not loinc_check_digit_ok("769-8")  # the check can fail: a mistyped code


def test_the_message_of_a_signed_case_parses_and_carries_the_loinc_codes(tmp_path):
    _store, case = signed_case(tmp_path / "cases.sqlite", cells=10)
    outbox = Outbox(tmp_path / "lis")
    control_id = queue_case(case, outbox, "Ana", lab_name="City Lab")
    message = parse((outbox.pending_dir / f"{control_id}.hl7").read_bytes().decode())
    assert message.msh.msh_9.to_er7() == "ORU^R01^ORU_R01" and message.msh.msh_12.value == "2.5.1"
    order = message.oru_r01_patient_result.oru_r01_order_observation
    assert order.obr.obr_4.to_er7().startswith("24318-8^")
    results = {obs.obx.obx_3.obx_3_1.value: obs.obx for obs in order.oru_r01_observation}
    assert results["26511-6"].obx_5.to_er7() == "50.0" and results["26478-8"].obx_8.to_er7() == "H"
    assert results["26499-4"].obx_5.to_er7() == "3.75"  # absolute: 50 % of 7.5 x10^9/L
    assert results["26464-8"].obx_5.to_er7() == "7.50"
    assert message.oru_r01_patient_result.oru_r01_patient.pid.pid_3.pid_3_1.value == "S-1"
    assert case.audit()[-1].action == "export hl7"


def test_an_unsigned_case_is_not_sent(tmp_path):
    from wbc_desktop.core.store import CaseStore

    case = CaseStore(tmp_path / "cases.sqlite").create_case(sample_id="S-9")
    with pytest.raises(HL7Error, match="only a signed-out case"):
        queue_case(case, Outbox(tmp_path / "lis"), "Ana")


def test_delimiters_in_a_sample_id_cannot_break_the_message(tmp_path):
    _store, case = signed_case(tmp_path / "cases.sqlite")
    _, differential, _ = case_report(case, CLASSES, RANGES)
    header = ResultHeader("C1", "S|1^2~3&4\rMSH|evil", 1, "Ana", "2026-12-03T09:00:00+01:00")
    message = parse(oru_message(header, differential, RESULT_CODES))
    assert [segment.name for segment in message.children] == ["MSH", "ORU_R01_PATIENT_RESULT"]
    assert (
        message.oru_r01_patient_result.oru_r01_patient.pid.pid_3.pid_3_1.value
        == "S\\F\\1\\S\\2\\R\\3\\T\\4 MSH\\F\\evil"
    )


def test_the_listener_acks_and_the_message_leaves_the_queue(tmp_path, listener):
    _store, case = signed_case(tmp_path / "cases.sqlite")
    outbox = Outbox(tmp_path / "lis")
    control_id = queue_case(case, outbox, "Ana")
    delivered, waiting = outbox.deliver(Destination(host="127.0.0.1", port=listener, timeout=5))
    assert delivered == [control_id] and waiting == []
    assert len(received) == 1 and parse(received[0]).msh.msh_10.value == control_id
    assert (outbox.sent_dir / f"{control_id}.hl7").exists()


def test_a_refused_or_silent_listener_leaves_the_message_queued_with_its_reason(tmp_path):
    _store, case = signed_case(tmp_path / "cases.sqlite")
    outbox = Outbox(tmp_path / "lis")
    control_id = queue_case(case, outbox, "Ana")
    _, waiting = outbox.deliver(Destination(host="127.0.0.1", port=free_port(), timeout=2))
    assert [item.name for item in waiting] == [control_id] and "cannot be reached" in waiting[0].error
    silent = socket.socket()
    silent.bind(("127.0.0.1", 0))
    silent.listen()  # accepts the connection, never answers
    try:
        _, waiting = outbox.deliver(Destination(host="127.0.0.1", port=silent.getsockname()[1], timeout=0.5))
    finally:
        silent.close()
    assert "no answer from the LIS" in waiting[0].error
    drop_folder = tmp_path / "drop"  # a drop folder that does not exist (an unmounted share)
    _, waiting = outbox.deliver(Destination(folder=drop_folder))
    assert "does not exist" in waiting[0].error
    drop_folder.mkdir()
    delivered, waiting = outbox.deliver(Destination(folder=drop_folder))
    assert delivered == [control_id] and (drop_folder / f"{control_id}.hl7").exists()


@pytest.mark.parametrize(
    ("answer", "found"),
    [
        ("MSH|^~\\&|LIS||||20261203||ACK|1|P|2.5.1\rMSA|AE|C1|bad sample\r", "refused the message (AE: bad sample)"),
        ("MSH|^~\\&|LIS||||20261203||ACK|1|P|2.5.1\rMSA|AA|OTHER\r", "acknowledged message 'OTHER'"),
        ("hello", "not an HL7 ACK"),
    ],
)
def test_a_negative_or_foreign_ack_is_not_taken_as_delivery(answer, found):
    with pytest.raises(HL7Error, match=found.replace("(", r"\(").replace(")", r"\)")):
        check_ack(answer, "C1")


def test_sign_out_in_the_window_sends_the_result_and_a_refused_lis_is_shown(qtbot, tmp_path, listener):
    window = make_window(qtbot, FakeClassifier(confidence=0.97))
    window.settings.target_count = 3
    window.settings.lis_host, window.settings.lis_port = "127.0.0.1", free_port()  # nobody listens there
    window.cases.new_case()
    with qtbot.waitSignal(window.batch_finished, timeout=30_000):
        drop(window, solid_images(tmp_path / "cells", 3))
    for cell in window.case.cells:
        window.case.confirm(cell.id, "Ana")
    window.case.update_details(sample_id="S-2026-0002")
    with qtbot.waitSignal(window.lis.finished, timeout=20_000):
        assert window.cases.sign_out(signer(window))
    assert "1 message(s) waiting" in window.lis.status.text() and "cannot be reached" in window.lis.status.text()
    window.settings.lis_port = listener  # the LIS is back: File › Retry sending to LIS
    with qtbot.waitSignal(window.lis.finished, timeout=20_000):
        window.lis.deliver(window.settings)
    assert window.lis.status.text() == "LIS: 1 result(s) sent" and len(received) == 1
