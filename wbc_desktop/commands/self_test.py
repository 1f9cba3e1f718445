"""``wbc-desktop self-test``: check an installation end to end, offscreen, and say what failed."""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

from wbc_desktop.commands.common import EXIT_NOTHING, EXIT_OK


def run_self_test(args: argparse.Namespace) -> int:
    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    failures: list[str] = []
    started = time.monotonic()

    def check(name: str, ok: bool, detail: str = "") -> bool:
        print(f"[{'ok' if ok else 'FAIL'}] {name}{': ' + detail if detail else ''}", flush=True)
        if not ok:
            failures.append(name)
        return ok

    from wbc_desktop.core.images import load_image
    from wbc_desktop.inference.litert import load_classifier
    from wbc_desktop.inference.manifest import ModelError
    from wbc_desktop.paths import resource

    try:
        classifier = load_classifier(args.model)
        check("model loads and its sha256 matches the manifest", True, f"{classifier.name} {classifier.version}")
    except ModelError as error:
        check("model loads and its sha256 matches the manifest", False, str(error))
        return EXIT_NOTHING

    # one sample per class of the eight-class set; a model checks those of its own classes
    shipped = {path.stem: path for path in sorted(resource("samples").glob("*.jpg"))}
    missing = [name for name in classifier.classes if name not in shipped]
    check("sample images shipped", not missing, f"{len(shipped)} found" + (f", none for {missing}" if missing else ""))
    samples = [shipped[name] for name in classifier.classes if name in shipped]
    results = []
    for path in samples:
        probabilities = classifier.predict([load_image(path)])[0]
        predicted = classifier.classes[int(probabilities.argmax())]
        results.append((path, predicted, dict(zip(classifier.classes, map(float, probabilities), strict=True))))
        check(
            f"sample {path.stem} classified as {path.stem}",
            predicted == path.stem,
            f"{predicted} {probabilities.max():.1%}",
        )

    robust = classifier.robust  # the LiteRT classifier itself (self-test loads no profile)
    if robust is not None:  # it answers only for foreign cells, so the samples would never reach it: run it directly
        sums = robust.predict([load_image(path) for path in samples]).sum(axis=1) if samples else []
        check(
            "stain-robust model (for other labs' cells) loads and runs",
            len(sums) == len(samples) and all(abs(total - 1.0) < 1e-4 for total in sums),
            f"{robust.name} {robust.version}, cells scoring above {classifier.route_above:g}",
        )

    from wbc_desktop.core.case import case_report
    from wbc_desktop.core.export import write_csv, write_json
    from wbc_desktop.core.store import CaseStore

    with tempfile.TemporaryDirectory(prefix="wbc-self-test-") as folder:
        folder = Path(folder)
        store = CaseStore(folder / "cases.sqlite")
        case = store.create_case(sample_id="SELF-TEST", operator="self-test", model={"name": classifier.name})
        case.add_results((str(p), label, probs) for p, label, probs in results)
        if case.cells:
            case.set_label(case.cells[0].id, None, "self-test")
        case.sign_out("self-test", incomplete_reason="installation self-test: sample cells, not a patient")
        reopened = store.open_case(case.id)
        check("case saved and reopened", len(reopened.cells) == len(results) and reopened.locked)
        integrity = store.verify(case.id)
        check("signed case sealed, its audit trail chained and intact", integrity.intact, integrity.message())
        classes = tuple(classifier.classes)
        cells, differential, report = case_report(reopened, classes)
        write_csv(folder / "case.csv", cells, classes, differential)
        write_json(folder / "case.json", report)
        check(
            "CSV and JSON exports written", (folder / "case.csv").stat().st_size > 0 and (folder / "case.json").exists()
        )
        try:
            from wbc_desktop.gui.report import ensure_application, write_pdf

            ensure_application()
            write_pdf(folder / "case.pdf", reopened, differential)
            check("PDF report written", (folder / "case.pdf").read_bytes().startswith(b"%PDF"))
        except Exception as error:
            check("PDF report written", False, str(error))
        try:
            from wbc_desktop.lis.hl7 import parse
            from wbc_desktop.lis.outbox import Outbox
            from wbc_desktop.lis.send import queue_case

            control_id = queue_case(reopened, Outbox(folder / "lis"), "self-test")
            sent = parse((folder / "lis" / "outbox" / f"{control_id}.hl7").read_bytes().decode("utf-8"))
            check("HL7 result message for the LIS built, validated and parsed", sent.msh.msh_10.value == control_id)
        except Exception as error:
            check("HL7 result message for the LIS", False, str(error))
        try:
            import sqlite3

            from wbc_desktop.accounts.store import Accounts

            accounts = Accounts(sqlite3.connect(":memory:", isolation_level=None))
            accounts.add("selftest", "Self Test", "self-test password")
            signer = accounts.authenticate("selftest", "self-test password")
            check("signing accounts (Argon2id password hashes)", signer.user_id == "selftest")
        except Exception as error:
            check("signing accounts (Argon2id password hashes)", False, str(error))
        try:
            from wbc_desktop.gui.text_checks import qt_text_functions_work

            check("Qt text functions (case, collation, dates; the Linux app trims ICU data)", *qt_text_functions_work())
        except Exception as error:
            check("Qt text functions", False, str(error))
        store.close()

    if getattr(sys, "frozen", False):
        import importlib.util

        check("TensorFlow is not in the frozen app", importlib.util.find_spec("tensorflow") is None)
    print(f"self-test {'passed' if not failures else 'FAILED'} in {time.monotonic() - started:.1f} s", flush=True)
    if failures:
        print("failed: " + "; ".join(failures), file=sys.stderr)
        return EXIT_NOTHING
    return EXIT_OK
