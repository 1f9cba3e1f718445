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
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QPushButton,
    QScrollArea,
    QSpinBox,
    QTabWidget,
    QVBoxLayout,
    QWidget,
)

from wbc_desktop.core.classes import (
    ALL_CLASSES,
    CATEGORIES,
    DEFAULT_KEY_MAP,
    MAX_CATEGORY_NAME,
    WBC_CLASSES,
    category_label,
    category_name_problem,
    display_title,
    is_wbc,
)
from wbc_desktop.core.lab_profile import PROFILE_FILE
from wbc_desktop.core.settings import LabSettings
from wbc_desktop.gui import style
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
        self.target_sound = QCheckBox("Sound when the target is reached")
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
            for label in (*ALL_CLASSES, *CATEGORIES):  # a key may stand for a category too (blast, …)
                combo.addItem(display_title(label), label)  # the name a person reads; the label kept as data
            keys_form.addRow(f"Key {key}", combo)
            self.keys[key] = combo

        form = QFormLayout()
        form.addRow("Target count", self.target)
        form.addRow("", self.target_sound)
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
        self.keys_problem = QLabel()
        self.keys_problem.setStyleSheet(style.ERROR_TEXT)
        self.keys_problem.setWordWrap(True)
        keys_layout.addWidget(self.keys_problem)
        keys_layout.addStretch(1)
        self.keys_page = keys_page
        self.tabs = QTabWidget()
        self.tabs.addTab(review_page, "Review")
        self.tabs.addTab(keys_page, "Keys")
        self.categories_page = self._categories_page()
        self.tabs.addTab(self.categories_page, "Categories")
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
        self.lab_categories: dict[str, bool] = {}  # the lab's own, made here or before (never removed)
        boxes = QWidget()
        self.category_list = QVBoxLayout(boxes)
        self.category_list.setContentsMargins(0, 0, 0, 0)
        for label in CATEGORIES:
            self._add_category_box(label, is_wbc(label))
        scroll = self.category_scroll = QScrollArea()  # the catalogue and a lab's own ones outgrow 720 px
        scroll.setWidget(boxes)
        scroll.setWidgetResizable(True)
        scroll.setFrameShape(QScrollArea.Shape.NoFrame)
        layout.addWidget(scroll, 1)
        self._show_new_category = False
        scroll.verticalScrollBar().rangeChanged.connect(self._list_grew)
        new = QGroupBox("A category of your own")
        rows = QVBoxLayout(new)
        row = QHBoxLayout()
        self.new_category = QLineEdit()
        self.new_category.setPlaceholderText("its name, e.g. Hairy cell")
        self.new_category.setMaxLength(MAX_CATEGORY_NAME)
        add = QPushButton("Add")
        add.setAutoDefault(False)  # Enter in the name field is OK's (which adds the name too: accept)
        add.clicked.connect(self.add_category)
        row.addWidget(self.new_category, 1)
        row.addWidget(add)
        rows.addLayout(row)
        self.new_category_counts = QCheckBox("A white cell: counts in the differential")
        self.new_category_counts.setChecked(True)
        self.new_category_counts.setToolTip("Unticked: reported per 100 WBC, outside the differential, like NRBC")
        rows.addWidget(self.new_category_counts)
        layout.addWidget(new)
        self.category_problem = QLabel()
        self.category_problem.setStyleSheet(style.HINT)
        self.category_problem.setWordWrap(True)
        layout.addWidget(self.category_problem)
        return page

    def _list_grew(self, _low: int, high: int) -> None:
        """A category just added is at the end of the list: scroll it into view."""
        if self._show_new_category:
            self._show_new_category = False
            self.category_scroll.verticalScrollBar().setValue(high)

    def accept(self) -> None:
        """OK with a name typed but not added adds it (Enter in the name field lands here too); a name that
        cannot be one keeps the dialog open on the Categories tab with the reason. Two keys for one class keep it
        open on the Keys tab, saying which (they used to be dropped silently with every other key change)."""
        chosen = {key: combo.currentData() for key, combo in self.keys.items()}
        twice = sorted({label for label in chosen.values() if list(chosen.values()).count(label) > 1})
        if twice:
            keys = ", ".join(key for key, label in chosen.items() if label in twice)
            self.keys_problem.setText(
                f"Keys {keys} file into the same class ({', '.join(display_title(t) for t in twice)}): "
                "give each key its own class."
            )
            self.tabs.setCurrentIndex(self.tabs.indexOf(self.keys_page))
            return
        self.keys_problem.clear()
        if self.new_category.text().strip():
            self.add_category()
            if self.new_category.text().strip():
                self.tabs.setCurrentIndex(self.tabs.indexOf(self.categories_page))
                return
        super().accept()

    def _add_category_box(self, label: str, counts: bool) -> QCheckBox:
        kind = "white cell, in the differential" if counts else "per 100 WBC, outside the differential"
        box = QCheckBox(f"{display_title(label)} ({kind})")
        self.category_list.addWidget(box)
        self.category_boxes[label] = box
        return box

    def _add_lab_category(self, label: str, counts: bool) -> QCheckBox:
        """One of the lab's own categories: kept with the settings, listed with the others, a choice for every key."""
        self.lab_categories[label] = counts
        for combo in self.keys.values():
            combo.addItem(display_title(label), label)
        return self._add_category_box(label, counts)

    def add_category(self) -> None:
        """A category of the lab's own from the typed name: in use at once, and a choice for every key. Whether
        it counts as a white cell is fixed from then on (a case filed into it keeps its meaning)."""
        name = self.new_category.text()
        problem = category_name_problem(name, (*ALL_CLASSES, *self.category_boxes))
        if problem is not None:
            self.category_problem.setText(problem)
            return
        label = category_label(name)
        self._add_lab_category(label, self.new_category_counts.isChecked()).setChecked(True)
        self._show_new_category = True  # scrolled to once the list has grown (_list_grew)
        self.new_category.clear()
        self.category_problem.setText(f"“{display_title(label)}” added; OK keeps it.")

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
        self.target_sound.setChecked(settings.target_sound)
        self.use_model_threshold.setChecked(settings.review_threshold is None)
        self.threshold.setValue(settings.effective_threshold(self.model_threshold))
        self.threshold.setEnabled(settings.review_threshold is not None)
        self.operator.setText(settings.operator)
        self.mode.setCurrentText(settings.mode)
        self.um_per_px.setValue(settings.um_per_px or 0.0)
        index = self.profile.findData(settings.profile)
        self.profile.setCurrentIndex(max(0, index))
        for label, counts in settings.lab_categories.items():
            if label not in self.category_boxes:
                self._add_lab_category(label, counts)
        for key, combo in self.keys.items():  # after the lab's own categories joined the keys' choices
            combo.setCurrentIndex(max(0, combo.findData(settings.key_map.get(key, DEFAULT_KEY_MAP[key]))))
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
        settings.target_sound = self.target_sound.isChecked()
        settings.review_threshold = None if self.use_model_threshold.isChecked() else self.threshold.value()
        settings.operator = self.operator.text().strip()
        settings.mode = self.mode.currentText()
        settings.um_per_px = self.um_per_px.value() if self.um_per_px.value() >= 0.01 else None
        settings.profile = self.profile.currentData() or ""
        chosen = {key: combo.currentData() for key, combo in self.keys.items()}
        if len(set(chosen.values())) == len(chosen):  # a key map that gives two keys one class is ignored
            settings.key_map = chosen
        settings.lab_name, settings.lab_address = self.lab_name.text().strip(), self.lab_address.text().strip()
        settings.lis_folder, settings.lis_host = self.lis_folder.text().strip(), self.lis_host.text().strip()
        settings.lis_port = self.lis_port.value()
        settings.lab_categories = dict(self.lab_categories)
        settings.categories = tuple(label for label, box in self.category_boxes.items() if box.isChecked())
        return settings
