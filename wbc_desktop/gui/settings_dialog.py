"""Settings: reference ranges, target count, review threshold, key map, operator; the laboratory and its LIS;
with Restore defaults."""

from __future__ import annotations

import copy

from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QDialog,
    QDialogButtonBox,
    QDoubleSpinBox,
    QFormLayout,
    QGridLayout,
    QGroupBox,
    QLabel,
    QLineEdit,
    QSpinBox,
    QTabWidget,
    QVBoxLayout,
    QWidget,
)

from wbc_desktop.core.classes import ALL_CLASSES, CATEGORIES, DEFAULT_KEY_MAP, WBC_CLASSES, display_title, is_wbc
from wbc_desktop.core.lab_profile import PROFILE_FILE
from wbc_desktop.core.settings import LabSettings
from wbc_desktop.paths import profiles_dir


def available_profiles() -> list[str]:
    folder = profiles_dir()
    return sorted(p.name for p in folder.iterdir() if (p / PROFILE_FILE).is_file()) if folder.is_dir() else []


class SettingsDialog(QDialog):
    def __init__(self, settings: LabSettings, classifier=None, parent=None):
        super().__init__(parent)
        self.setWindowTitle("Preferences")
        self.model_threshold = classifier.review_threshold if classifier is not None else 0.9
        self.ranges: dict[str, tuple[QDoubleSpinBox, QDoubleSpinBox]] = {}
        ranges_box = QGroupBox("Reference ranges (% of WBC)")
        grid = QGridLayout(ranges_box)
        for row, label in enumerate(WBC_CLASSES):
            low, high = QDoubleSpinBox(), QDoubleSpinBox()
            for spin in (low, high):
                spin.setRange(0.0, 100.0)
                spin.setDecimals(1)
            grid.addWidget(QLabel(display_title(label)), row, 0)
            grid.addWidget(low, row, 1)
            grid.addWidget(QLabel("–"), row, 2)
            grid.addWidget(high, row, 3)
            self.ranges[label] = (low, high)

        self.target = QComboBox()
        self.target.addItems(["100", "200"])
        self.use_model_threshold = QCheckBox("Use the model's calibrated threshold")
        self.threshold = QDoubleSpinBox()
        self.threshold.setRange(0.0, 1.0)
        self.threshold.setSingleStep(0.05)
        self.threshold.setDecimals(2)
        self.use_model_threshold.toggled.connect(lambda on: self.threshold.setEnabled(not on))
        self.operator = QLineEdit()
        self.profile = QComboBox()
        self.profile.addItem("(none: the bundled model)", "")
        for name in available_profiles():
            self.profile.addItem(name, name)
        self.mode = QComboBox()
        self.mode.addItems(["auto", "cell", "field"])
        self.mode.setToolTip(
            "cell: each image is one cell; field: find the WBCs in smear fields; auto: decide per image"
        )
        self.um_per_px = QDoubleSpinBox()  # smear fields: the camera's calibration, when the lab knows it
        self.um_per_px.setRange(0.0, 10.0)
        self.um_per_px.setDecimals(3)
        self.um_per_px.setSingleStep(0.01)
        self.um_per_px.setSuffix(" µm/px")
        self.um_per_px.setSpecialValueText("measured from the red cells")
        self.um_per_px.setToolTip(
            "Smear fields: the finder sizes everything by the red cells it sees (about 7.5 µm across). "
            "Enter your camera's micrometres per pixel to use that instead (fields without red cells need it)."
        )
        self.keys: dict[str, QComboBox] = {}
        keys_box = QGroupBox("Keys for reclassifying (0 or X excludes)")
        keys_form = QFormLayout(keys_box)
        for key in DEFAULT_KEY_MAP:
            combo = QComboBox()
            combo.addItems([*ALL_CLASSES, *CATEGORIES])  # a key may stand for a lab category too (blast, …)
            keys_form.addRow(f"Key {key}", combo)
            self.keys[key] = combo

        form = QFormLayout()
        form.addRow("Target count", self.target)
        form.addRow("Review threshold", self.threshold)
        form.addRow("", self.use_model_threshold)
        form.addRow("Operator", self.operator)
        form.addRow("Images are", self.mode)
        form.addRow("Field scale", self.um_per_px)
        form.addRow("Lab profile", self.profile)
        buttons = QDialogButtonBox(
            QDialogButtonBox.StandardButton.Ok
            | QDialogButtonBox.StandardButton.Cancel
            | QDialogButtonBox.StandardButton.RestoreDefaults
        )
        buttons.accepted.connect(self.accept)
        buttons.rejected.connect(self.reject)
        buttons.button(QDialogButtonBox.StandardButton.RestoreDefaults).clicked.connect(self.restore_defaults)
        self.buttons = buttons
        review_page = QWidget()
        review_layout = QVBoxLayout(review_page)
        review_layout.addWidget(ranges_box)
        review_layout.addLayout(form)
        review_layout.addStretch(1)
        keys_page = QWidget()  # its own tab: with the ranges on one page the dialog outgrew a 720 px screen
        keys_layout = QVBoxLayout(keys_page)
        keys_layout.addWidget(keys_box)
        keys_layout.addStretch(1)
        self.tabs = QTabWidget()
        self.tabs.addTab(review_page, "Review")
        self.tabs.addTab(keys_page, "Keys")
        self.tabs.addTab(self._categories_page(), "Categories")
        self.tabs.addTab(self._lab_page(), "Laboratory and LIS")
        layout = QVBoxLayout(self)
        layout.addWidget(self.tabs)
        layout.addWidget(buttons)
        self.show_settings(settings)

    def _categories_page(self) -> QWidget:
        """Which categories beyond the model's classes technicians file cells in (CellaVision's and a manual
        counter's); white cells count in the differential, the others are reported per 100 WBC."""
        page = QWidget()
        layout = QVBoxLayout(page)
        layout.addWidget(QLabel("Categories in use (right-click a cell › Other categories, or give one a key):"))
        self.category_boxes: dict[str, QCheckBox] = {}
        for label in CATEGORIES:
            kind = "white cell, in the differential" if is_wbc(label) else "per 100 WBC, outside the differential"
            box = QCheckBox(f"{display_title(label)} ({kind})")
            layout.addWidget(box)
            self.category_boxes[label] = box
        layout.addStretch(1)
        return page

    def _lab_page(self) -> QWidget:
        """The laboratory printed on reports, and where signed results go (lis.outbox)."""
        page = QWidget()
        form = QFormLayout(page)
        self.lab_name, self.lab_address = QLineEdit(), QLineEdit()
        self.lis_folder, self.lis_host = QLineEdit(), QLineEdit()
        self.lis_folder.setPlaceholderText("a folder the LIS reads HL7 files from (optional)")
        self.lis_host.setPlaceholderText("host name or address of the LIS's MLLP listener (optional)")
        self.lis_port = QSpinBox()
        self.lis_port.setRange(0, 65535)
        self.lis_port.setSpecialValueText("none")
        form.addRow("Laboratory name", self.lab_name)
        form.addRow("Address", self.lab_address)
        form.addRow("LIS drop folder", self.lis_folder)
        form.addRow("LIS MLLP host", self.lis_host)
        form.addRow("LIS MLLP port", self.lis_port)
        return page

    def show_settings(self, settings: LabSettings) -> None:
        for label, (low, high) in self.ranges.items():
            pair = settings.reference_ranges.get(label, (0.0, 100.0))
            low.setValue(pair[0])
            high.setValue(pair[1])
        self.target.setCurrentText(str(settings.target_count))
        self.use_model_threshold.setChecked(settings.review_threshold is None)
        self.threshold.setValue(settings.effective_threshold(self.model_threshold))
        self.threshold.setEnabled(settings.review_threshold is not None)
        self.operator.setText(settings.operator)
        self.mode.setCurrentText(settings.mode)
        self.um_per_px.setValue(settings.um_per_px or 0.0)
        index = self.profile.findData(settings.profile)
        self.profile.setCurrentIndex(max(0, index))
        for key, combo in self.keys.items():
            combo.setCurrentText(settings.key_map.get(key, DEFAULT_KEY_MAP[key]))
        for label, box in self.category_boxes.items():
            box.setChecked(label in settings.categories)
        self.lab_name.setText(settings.lab_name)
        self.lab_address.setText(settings.lab_address)
        self.lis_folder.setText(settings.lis_folder)
        self.lis_host.setText(settings.lis_host)
        self.lis_port.setValue(settings.lis_port)

    def restore_defaults(self) -> None:
        defaults = LabSettings()
        defaults.operator = self.operator.text()  # a person's name is not a lab default
        defaults.profile = self.profile.currentData() or ""  # nor is the lab's own profile
        lab = self.result_settings()  # nor its name, address and LIS
        defaults.lab_name, defaults.lab_address = lab.lab_name, lab.lab_address
        defaults.lis_folder, defaults.lis_host, defaults.lis_port = lab.lis_folder, lab.lis_host, lab.lis_port
        defaults.um_per_px = lab.um_per_px  # nor its camera's calibration
        self.show_settings(defaults)

    def result_settings(self) -> LabSettings:
        settings = copy.deepcopy(LabSettings())
        settings.reference_ranges = {
            label: (min(low.value(), high.value()), max(low.value(), high.value()))
            for label, (low, high) in self.ranges.items()
        }
        settings.target_count = int(self.target.currentText())
        settings.review_threshold = None if self.use_model_threshold.isChecked() else self.threshold.value()
        settings.operator = self.operator.text().strip()
        settings.mode = self.mode.currentText()
        settings.um_per_px = self.um_per_px.value() if self.um_per_px.value() >= 0.01 else None
        settings.profile = self.profile.currentData() or ""
        chosen = {key: combo.currentText() for key, combo in self.keys.items()}
        if len(set(chosen.values())) == len(chosen):  # a key map that gives two keys one class is ignored
            settings.key_map = chosen
        settings.lab_name, settings.lab_address = self.lab_name.text().strip(), self.lab_address.text().strip()
        settings.lis_folder, settings.lis_host = self.lis_folder.text().strip(), self.lis_host.text().strip()
        settings.lis_port = self.lis_port.value()
        settings.categories = tuple(label for label, box in self.category_boxes.items() if box.isChecked())
        return settings
