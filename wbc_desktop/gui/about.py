"""The About dialog's text: model card summary, versions, data licences."""

from __future__ import annotations

import html
import platform

from PySide6 import __version__ as pyside_version

from wbc_desktop import __version__


def about_html(classifier) -> str:
    lines = [f"<h3>WBC Desktop {__version__}</h3>"]
    if classifier is not None:
        manifest = classifier.manifest
        metrics = manifest.extra.get("metrics", {})
        lines.append(
            f"<p><b>Model</b>: {html.escape(manifest.name)} {html.escape(manifest.version)}, "
            f"{html.escape(str(manifest.extra.get('architecture', '')))}; input {manifest.input_size} px; "
            f"temperature {manifest.temperature:.2f}; review below {manifest.review_threshold:.0%} confidence.</p>"
        )
        if metrics:
            external = ", ".join(f"{html.escape(k)} {v:.1%}" for k, v in metrics.get("external", {}).items())
            lines.append(
                f"<p>PBC test split: accuracy {metrics.get('test_accuracy', 0):.2%}, macro-F1 "
                f"{metrics.get('test_macro_f1', 0):.3f}."
                + (f" Other lab (zero-shot): {external}: check results from other labs carefully." if external else "")
                + "</p>"
            )
    else:
        lines.append("<p>Model: not loaded.</p>")
    lines.append(
        "<p><b>Data</b>: PBC dataset (Acevedo et al., Data in Brief 30 (2020) 105474), CC BY 4.0. "
        "BCCD dataset, MIT licence (c) 2017 shenggan.</p>"
        f"<p>Python {platform.python_version()}, PySide6 {pyside_version}, LiteRT runtime.</p>"
        "<p>For laboratory use under the supervision of qualified staff; every differential is reviewed "
        "and signed out by a person.</p>"
    )
    return "".join(lines)
