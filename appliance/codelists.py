"""Versioned code lists (typeName, language, maintenance, mode, …) loaded from data, not enums."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

from .errors import ConfigError, ValidationError
from .text import fold, nfc


@dataclass(frozen=True)
class CodeItem:
    code: str
    label: str
    label_en: str
    extra: tuple[tuple[str, Any], ...] = ()

    def get(self, key: str, default: Any = None) -> Any:
        return dict(self.extra).get(key, default)


@dataclass(frozen=True)
class CodeList:
    name: str
    source: str
    items: tuple[CodeItem, ...]
    _index: tuple[tuple[str, str], ...]  # folded code/label/alias -> code

    def lookup(self, value: str | int) -> CodeItem:
        """Find an item by its code or by its Vietnamese label or alias, folding diacritics."""
        exact = nfc(str(value)).strip()
        # A spreadsheet turns a typed "01" into the number 1: a lone digit is also tried as
        # the two-digit code (lists whose codes are single digits find it as it is).
        padded = exact.zfill(2) if exact.isdigit() and len(exact) == 1 else exact
        for candidate in dict.fromkeys((exact, padded)):
            for item in self.items:  # HĐ (Hợp đồng) and HD (Hướng dẫn) differ only by đ
                if item.code == candidate or item.label == candidate:
                    return item
        key = fold(exact)
        for k, code in self._index:
            if k == key:
                return self.by_code(code)
        raise ValidationError(f"'{value}' is not in the code list {self.name}")

    def by_code(self, code: str) -> CodeItem:
        for item in self.items:
            if item.code == code:
                return item
        raise ValidationError(f"code '{code}' is not in the code list {self.name}")

    def codes(self) -> list[str]:
        return [item.code for item in self.items]


@dataclass(frozen=True)
class CodeLists:
    version: str
    sha256: str
    lists: dict[str, CodeList]

    def __getitem__(self, name: str) -> CodeList:
        try:
            return self.lists[name]
        except KeyError:
            raise ConfigError(f"code list {name} missing from version {self.version}") from None


def parse(raw: bytes) -> CodeLists:
    doc = json.loads(raw.decode("utf-8"))
    lists: dict[str, CodeList] = {}
    for name, spec in doc["lists"].items():
        items = []
        index: list[tuple[str, str]] = []
        for it in spec["items"]:
            code = str(it["code"])
            extra = tuple(
                (k, v) for k, v in it.items() if k not in ("code", "label", "label_en", "aliases")
            )
            items.append(CodeItem(code, nfc(it["label"]), it.get("label_en", ""), extra))
            keys = [code, it["label"], *it.get("aliases", [])]
            index.extend((fold(nfc(str(k))), code) for k in keys)
        lists[name] = CodeList(name, spec.get("source", ""), tuple(items), tuple(index))
    return CodeLists(str(doc["version"]), hashlib.sha256(raw).hexdigest(), lists)


def load_bundled() -> tuple[bytes, CodeLists]:
    raw = resources.files("appliance").joinpath("data/codelists.json").read_bytes()
    return raw, parse(raw)


def load_file(path: Path) -> tuple[bytes, CodeLists]:
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise ConfigError(f"cannot read code lists {path}: {exc.strerror}") from exc
    return raw, parse(raw)
