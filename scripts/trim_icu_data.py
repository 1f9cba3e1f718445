"""Trim the ICU data library that PySide6's Qt links (Linux): 32 MB of locale data down to what the app can use.

    python scripts/trim_icu_data.py dist/wbc-desktop      (scripts/build_installer runs it; needs binutils' nm,
                                                          gcc and icupkg from Debian's icu-devtools)

ICU's data is one package embedded in ``libicudata.so.NN`` (the symbol ``icudtNN_dat``). Qt uses ICU for
collation, case mapping and legacy code pages; the app's text is UTF-8 and its interface English, and Qt formats
numbers and dates from its own CLDR tables. Kept: every core file (Unicode properties, normalisation, break
rules, collation root), the root and English locales and the tables every locale falls back on; removed: other
locales' names, currencies, units, time zones, number spellings and collations, transliterators and
code-page converters. Other languages' text still sorts (by the root collation) and
changes case (ICU's root rules). The frozen self-test checks collation, case mapping and dates after the swap.
Without one of the tools the library is left as it is (and the app folder stays ~30 MB larger).
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

KEEP_LOCALES = re.compile(r"(root|en|en_US|en_GB|en_001|en_150)\.res$")
LOCALE = re.compile(r"[a-z]{2,3}(_[A-Za-z0-9]*)*\.res$")  # af.res, zh_Hant_TW.res; not pool.res, res_index.res
DROP_TREES = ("translit/",)  # transliterators: the app never transliterates
DROP_SUFFIXES = (".cnv",)  # legacy code pages (the break rules' root refers to the CJK/Thai dictionaries: kept)


def removable(item: str) -> bool:
    """Whether an ICU data item (``coll/de.res``, ``ibm-5346_P100-1998.cnv``) can go."""
    name = item.rsplit("/", 1)[-1]
    if item.startswith(DROP_TREES) or name.endswith(DROP_SUFFIXES):
        return True
    return bool(LOCALE.fullmatch(name)) and not KEEP_LOCALES.fullmatch(name)


def data_symbol(library: Path) -> tuple[str, int, int]:
    """The data symbol's name, file offset and size (the library's .rodata is mapped at its file offset)."""
    listing = subprocess.run(["nm", "-D", "-S", str(library)], capture_output=True, text=True, check=True).stdout
    for line in listing.splitlines():
        parts = line.split()
        if len(parts) == 4 and re.fullmatch(r"icudt\d+_dat", parts[3]):
            return parts[3], int(parts[0], 16), int(parts[1], 16)
    raise ValueError(f"no icudtNN_dat symbol in {library}")


def trim(library: Path) -> tuple[int, int]:
    """Replace ``library`` with a trimmed copy; returns (bytes before, bytes after)."""
    symbol, offset, size = data_symbol(library)
    before = library.stat().st_size
    with tempfile.TemporaryDirectory() as folder:
        work = Path(folder)
        package = work / f"{symbol[:-4]}l.dat"
        package.write_bytes(library.read_bytes()[offset : offset + size])
        items = subprocess.run(["icupkg", "-l", str(package)], capture_output=True, text=True, check=True).stdout
        drop = [item for item in items.split() if removable(item)]
        (work / "drop.txt").write_text("\n".join(drop) + "\n")
        removed = subprocess.run(["icupkg", "-r", "drop.txt", package.name], cwd=work, capture_output=True, text=True)
        if removed.returncode != 0:  # e.g. a kept item that depends on a removed one: say which, change nothing
            raise RuntimeError(f"icupkg could not trim {library.name}: {removed.stderr.strip()[:2000]}")
        assembly = work / "data.S"
        assembly.write_text(
            f".section .rodata\n.globl {symbol}\n.type {symbol}, @object\n.balign 16\n{symbol}:\n"
            f'.incbin "{package}"\n.size {symbol}, .-{symbol}\n.section .note.GNU-stack,"",@progbits\n'
        )
        trimmed = work / library.name
        subprocess.run(
            ["gcc", "-shared", "-o", str(trimmed), f"-Wl,-soname,{library.name}", str(assembly)],
            check=True,
            capture_output=True,
        )
        shutil.copyfile(trimmed, library)
    return before, library.stat().st_size


def main() -> int:
    app = Path(sys.argv[1] if len(sys.argv) > 1 else "dist/wbc-desktop")
    missing = [tool for tool in ("nm", "gcc", "icupkg") if shutil.which(tool) is None]
    if missing:
        print(f"ICU data left whole: {', '.join(missing)} not found (apt-get install binutils gcc icu-devtools)")
        return 0
    for library in sorted(app.glob("_internal/PySide6/Qt/lib/libicudata.so.*")):
        if library.is_symlink():
            continue
        before, after = trim(library)
        print(f"ICU data trimmed: {library.name} {before / 1e6:.1f} MB -> {after / 1e6:.1f} MB")
    return 0


if __name__ == "__main__":
    sys.exit(main())
