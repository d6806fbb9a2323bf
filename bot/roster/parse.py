"""Reading and validating roster files (花名册): CSV or .xlsx in, ChildRow / RowRejected out.

Pure parsing: no database, no Flask. See ROSTER.md for the rules implemented here.
Error codes are message keys whose texts live in messages/<lang>/LC_MESSAGES/roster.po.
"""
from __future__ import annotations

import csv
import functools
import io
import operator
import re
import unicodedata
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from pathlib import Path
from collections.abc import Callable, Iterator, Sequence

import phonenumbers

__all__ = [
    "FIELDS", "FIELD_BY_KEY", "FieldSpec", "RosterFileError", "FieldError", "RowRejected", "PersonRow",
    "ChildRow", "RosterReader", "open_roster", "format_row_error", "format_file_error",
    "normalize_header", "parse_date", "normalize_phone", "roster_gettext", "ERROR_CODES",
]

# ---------------------------------------------------------------------------------------------
# Public data types


class RosterFileError(Exception):
    """The roster file cannot be read at all (the CLI exits 2)."""

    def __init__(self, code: str, **params: object) -> None:
        super().__init__(f"{code} {params}" if params else code)
        self.code = code
        self.params: dict[str, object] = dict(params)


@dataclass(frozen=True)
class FieldError:
    """One problem with one cell of a row."""

    column: str  # the header as it appeared in the file, or the canonical Chinese name if absent
    code: str  # message key, e.g. "roster.error.phone_invalid"
    params: dict[str, str] = field(default_factory=dict, hash=False, compare=True)


@dataclass(frozen=True)
class RowRejected:
    """A data row that cannot be imported, with every problem found in it."""

    row_number: int  # as a spreadsheet shows it: the header is row 1
    errors: tuple[FieldError, ...]


@dataclass(frozen=True)
class PersonRow:
    """An adult named in a row: a parent, the entrusted guardian or the paired helper."""

    role: str  # "father" | "mother" | "guardian" | "helper"
    name: str | None
    phone: str | None  # E.164, a valid mainland mobile
    relationship: str | None  # guardian only: the label as written (奶奶, 外公, 祖母...)
    workplace: str | None  # parents only: 务工地
    channel: str  # "sms" | "voice" | "both"


@dataclass(frozen=True)
class ChildRow:
    """A valid data row: one child and the adults around them."""

    row_number: int
    name: str
    sex: str | None  # "male" | "female"
    birth_date: date
    id_number: str | None
    has_hukou: bool
    school_status: str | None  # "preschool" | "in_school" | "dropout" | "not_enrolled"
    school: str | None
    county: str | None
    township: str
    village: str
    guardianship_type: str  # "grandparents" | "relatives" | "unattended" | "one_parent_incapable"
    guardianship_quality: str | None  # "good" | "fair" | "poor"
    special_circumstances: str | None
    special_flags: frozenset[str]  # subset of {"disabled", "ill", "seriously_ill"}
    people: tuple[PersonRow, ...]  # only those with a name or a phone

    def identity(self) -> tuple[str, ...]:
        """The key that says two rows are the same child: the ID number, else name+birth+township+village."""
        if self.id_number:
            return ("id", self.id_number)
        return ("nbtv", self.name, self.birth_date.isoformat(), self.township, self.village)


# ---------------------------------------------------------------------------------------------
# Columns


@dataclass(frozen=True)
class FieldSpec:
    """A roster column: its key in code, its canonical Chinese header and the aliases offices use."""

    key: str
    header: str
    aliases: tuple[str, ...] = ()
    required: bool = False


FIELDS: tuple[FieldSpec, ...] = (
    FieldSpec("child_name", "儿童姓名", ("姓名", "学生姓名", "留守儿童姓名", "儿童名字"), required=True),
    FieldSpec("sex", "性别"),
    FieldSpec("birth_date", "出生日期", ("出生年月日", "生日")),  # required unless 身份证号 exists
    FieldSpec("id_number", "身份证号", ("身份证号码", "公民身份号码", "身份证")),
    FieldSpec("hukou", "户口登记", ("是否登记户口", "有无户口")),
    FieldSpec("school_status", "就学状态", ("就学情况", "在校情况")),
    FieldSpec("school", "学校", ("就读学校",)),
    FieldSpec("township", "乡镇", ("乡镇(街道)", "乡镇街道"), required=True),
    FieldSpec("village", "村", ("村(社区)", "村居", "村(居)"), required=True),
    FieldSpec("county", "县", ("县(市、区)", "县区")),
    FieldSpec("guardianship_type", "监护类型", ("监护方式", "留守类型"), required=True),
    FieldSpec("guardianship_quality", "监护情况", ("监护状况",)),
    FieldSpec("special_circumstances", "特殊情况", ("困难情况", "备注")),
    FieldSpec("father_name", "父亲姓名"),
    FieldSpec("father_phone", "父亲电话", ("父亲手机", "父亲联系电话")),
    FieldSpec("father_workplace", "父亲务工地", ("父亲务工地点",)),
    FieldSpec("mother_name", "母亲姓名"),
    FieldSpec("mother_phone", "母亲电话", ("母亲手机", "母亲联系电话")),
    FieldSpec("mother_workplace", "母亲务工地", ("母亲务工地点",)),
    FieldSpec("guardian_name", "监护人姓名", ("委托监护人姓名", "受委托监护人")),
    FieldSpec("guardian_relationship", "监护人关系", ("与儿童关系", "监护人与儿童关系")),
    FieldSpec("guardian_phone", "监护人电话", ("监护人手机", "监护人联系电话")),
    FieldSpec("channel", "联系方式", ("偏好联系方式", "联系渠道")),
    FieldSpec("helper_name", "帮扶人姓名", ("结对帮扶人",)),
    FieldSpec("helper_phone", "帮扶人电话", ("结对帮扶人电话",)),
)
FIELD_BY_KEY: dict[str, FieldSpec] = {spec.key: spec for spec in FIELDS}

_SPACES_RE = re.compile(r"\s+")
_TRAILING_NOTE_RE = re.compile(r"\((?:必填|选填|必填项|选填项|可选|非必填)\)$")
_TRAILING_PAREN_RE = re.compile(r"\([^()]*\)$")
_REQUIRED_MARK_CHARS = "*※★"


def normalize_header(text: str) -> str:
    """Fold a header for matching: NFKC (full-width → half-width), no spaces, no required-marks or (必填)/(选填)."""
    folded = _SPACES_RE.sub("", unicodedata.normalize("NFKC", text))
    folded = folded.strip(_REQUIRED_MARK_CHARS)
    folded = _TRAILING_NOTE_RE.sub("", folded).strip(_REQUIRED_MARK_CHARS)
    return folded


_HEADER_LOOKUP: dict[str, str] = {}
for _spec in FIELDS:
    for _name in (_spec.header, *_spec.aliases):
        _HEADER_LOOKUP[normalize_header(_name)] = _spec.key


def _match_header(text: str) -> str | None:
    """The field key a header names, or None; a trailing parenthetical note is tried off as a last resort."""
    folded = normalize_header(text)
    while folded:
        key = _HEADER_LOOKUP.get(folded)
        if key is not None:
            return key
        shorter = _TRAILING_PAREN_RE.sub("", folded)
        if shorter == folded:
            return None
        folded = shorter
    return None


# ---------------------------------------------------------------------------------------------
# Value vocabularies

_E = "roster.error."
ERROR_CODES: tuple[str, ...] = tuple(_E + name for name in (
    "required", "birth_or_id_required", "too_long", "sex_invalid", "date_invalid", "date_in_future", "too_old",
    "id_format", "id_checksum", "id_birth_invalid", "id_birth_mismatch", "id_sex_mismatch",
    "scientific_notation", "phone_invalid", "phone_landline", "phone_multiple", "hukou_invalid",
    "school_status_invalid", "guardianship_type_invalid", "guardianship_quality_invalid", "channel_invalid",
    "duplicate_row", "unexpected",
))
FILE_ERROR_CODES: tuple[str, ...] = tuple("roster.file." + name for name in (
    "not_found", "unreadable", "empty", "no_rows", "encoding", "binary", "xls_unsupported", "xlsx_invalid",
    "csv_invalid", "missing_columns", "too_large",
))

_SEX = {"男": "male", "女": "female", "男性": "male", "女性": "female", "男孩": "male", "女孩": "female",
        "m": "male", "f": "female", "male": "male", "female": "female"}
_SEX_LABEL = {"male": "男", "female": "女"}
_HUKOU = {"是": True, "有": True, "已登记": True, "已落户": True, "y": True, "yes": True, "true": True, "1": True,
          "否": False, "无": False, "没有": False, "未登记": False, "未落户": False, "n": False, "no": False,
          "false": False, "0": False}
_SCHOOL_STATUS = {"学龄前": "preschool", "未到学龄": "preschool", "在读": "in_school", "在校": "in_school",
                  "就读": "in_school", "上学": "in_school", "辍学": "dropout", "失学": "dropout",
                  "未入学": "not_enrolled", "未上学": "not_enrolled", "未就学": "not_enrolled"}
for _key in ("preschool", "in_school", "dropout", "not_enrolled"):
    _SCHOOL_STATUS[_key] = _key
_GUARDIANSHIP_TYPE = {"祖父母监护": "grandparents", "外祖父母监护": "grandparents", "(外)祖父母监护": "grandparents",
                      "祖辈监护": "grandparents", "隔代监护": "grandparents",
                      "亲戚朋友监护": "relatives", "亲属监护": "relatives", "亲友监护": "relatives",
                      "其他亲属监护": "relatives", "无人监护": "unattended",
                      "父母一方外出另一方无监护能力": "one_parent_incapable", "一方无监护能力": "one_parent_incapable"}
for _key in ("grandparents", "relatives", "unattended", "one_parent_incapable"):
    _GUARDIANSHIP_TYPE[_key] = _key
_GUARDIANSHIP_QUALITY = {"较好": "good", "好": "good", "良好": "good", "一般": "fair", "较差": "poor", "差": "poor",
                         "good": "good", "fair": "fair", "poor": "poor"}
_CHANNEL = {"短信": "sms", "文字": "sms", "sms": "sms", "电话": "voice", "语音": "voice", "语音电话": "voice",
            "打电话": "voice", "voice": "voice", "短信和电话": "both", "电话和短信": "both", "短信和语音": "both",
            "短信+电话": "both", "短信、电话": "both", "短信/电话": "both", "都可以": "both", "均可": "both",
            "both": "both"}
# Words that fill an empty cell; they count as blank.
_PLACEHOLDERS = frozenset({"/", "\\", "-", "--", "—", "——", "无", "暂无", "空", "n/a", "na", "null", "none", "#n/a"})
_HUKOU_PLACEHOLDERS = _PLACEHOLDERS - {"无"}  # in 户口登记 (有无户口), 无 means "no hukou"
_FLAG_PATTERNS: tuple[tuple[re.Pattern[str], frozenset[str]], ...] = (
    (re.compile(r"(?<![无未非])(?:残疾|残障|智障|聋哑|失明)"), frozenset({"disabled"})),
    (re.compile(r"(?<![无未非])(?:重病|大病|重大疾病|重症|危重)"), frozenset({"seriously_ill", "ill"})),
    (re.compile(r"(?<![无未非])(?:患病|疾病|生病|慢性病|有病)"), frozenset({"ill"})),
)
_MAX_LENGTH = {"child_name": 50, "father_name": 50, "mother_name": 50, "guardian_name": 50, "helper_name": 50,
               "special_circumstances": 1000}
_DEFAULT_MAX_LENGTH = 200

_CONTROL_RE = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f\u200b-\u200f\u2028-\u202e\u2060-\u2064\ufeff]+|[\t\r\n]+")


# Free text (names, places, notes) keeps its Chinese punctuation (，：（）); only full-width letters, digits and
# spaces become ASCII. Coded values (dates, phones, labels) get full NFKC.
_WIDTH_TABLE = {**{code: code - 0xFEE0 for code in range(0xFF10, 0xFF1A)},
                **{code: code - 0xFEE0 for code in range(0xFF21, 0xFF3B)},
                **{code: code - 0xFEE0 for code in range(0xFF41, 0xFF5B)}, 0x3000: 0x20}


# Both folds are C callables (no Python frame per cell): they run on every cell of every row.
# Free text: full-width letters, digits and spaces as ASCII; everything else as written.
_fold_free_text: Callable[[str], str] = operator.methodcaller("translate", _WIDTH_TABLE)
# Coded values: NFKC, every full-width form (digits, letters, punctuation, brackets) as ASCII.
_fold_coded_text: Callable[[str], str] = functools.partial(unicodedata.normalize, "NFKC")


def _clean_text(raw: object, fold: Callable[[str], str] = _fold_coded_text,
                placeholders: frozenset[str] = _PLACEHOLDERS) -> str | None:
    """A cell as stripped, width-normalised text, or None when blank or a placeholder such as 无 or /."""
    if type(raw) is str:
        text = raw
    elif raw is None:
        return None
    elif isinstance(raw, str):
        text = str(raw)
    elif isinstance(raw, bool):
        text = "是" if raw else "否"
    elif isinstance(raw, float):
        text = str(int(raw)) if raw.is_integer() else repr(raw)
    elif isinstance(raw, datetime):
        text = raw.date().isoformat() if raw.time() == datetime.min.time() else raw.isoformat(sep=" ")
    else:
        text = str(raw)
    if not text.isascii():
        text = fold(text)
    if not text.isprintable():
        text = _CONTROL_RE.sub(" ", text)
    text = text.strip()
    if not text or (len(text) <= 4 and text.lower() in placeholders):
        return None
    return text


def _fold_label(text: str) -> str:
    """A vocabulary label folded for lookup: no spaces, lower case, without a leading 由."""
    folded = _SPACES_RE.sub("", text).lower()
    return folded[1:] if folded.startswith("由") and len(folded) > 1 else folded


def _lookup_label(vocabulary: dict[str, str], text: str) -> str | None:
    """The value a label stands for in a vocabulary, trying it as written first, then folded."""
    found = vocabulary.get(text)
    return found if found is not None else vocabulary.get(_fold_label(text))


# ---------------------------------------------------------------------------------------------
# Dates

_DATE_RE = re.compile(
    r"(\d{4})\s*[-/.年]\s*(\d{1,2})\s*[-/.月]\s*(\d{1,2})\s*[日号]?"
    r"(?:\s*[T ]?\s*\d{1,2}:\d{2}(?::\d{2}(?:\.\d+)?)?)?")
_COMPACT_DATE_RE = re.compile(r"(\d{4})(\d{2})(\d{2})(?:\.0+)?")
_SERIAL_RE = re.compile(r"(\d{5})(?:\.\d+)?")
_EXCEL_EPOCH_1900 = date(1899, 12, 30)


def _date_from_serial(serial: float, epoch: date) -> date | None:
    """An Excel serial day number as a date (None if out of range)."""
    if not 61 <= serial < 2958466:
        return None
    return epoch + timedelta(days=int(serial))


def parse_date(raw: object, epoch: date = _EXCEL_EPOCH_1900) -> date | None:
    """A birth date from a cell: date/datetime, Excel serial, or text like 2012-03-05, 2012年3月5日, 20120305."""
    if isinstance(raw, datetime):
        return raw.date()
    if isinstance(raw, date):
        return raw
    if isinstance(raw, bool):
        return None
    if isinstance(raw, (int, float)):
        if 19000101 <= raw <= 29991231 and float(raw).is_integer():
            return parse_date(str(int(raw)), epoch)
        return _date_from_serial(raw, epoch)
    text = _clean_text(raw)
    if text is None:
        return None
    match = _DATE_RE.fullmatch(text) or _COMPACT_DATE_RE.fullmatch(text)
    if match:
        try:
            return date(int(match[1]), int(match[2]), int(match[3]))
        except ValueError:
            return None
    match = _SERIAL_RE.fullmatch(text)
    if match:
        return _date_from_serial(float(text), epoch)
    return None


def _age_on(birth: date, today: date) -> int:
    """Whole years (周岁) between birth and today."""
    return today.year - birth.year - ((today.month, today.day) < (birth.month, birth.day))


# ---------------------------------------------------------------------------------------------
# Numbers written by Excel: phones and ID numbers

_DIGITS_FLOAT_RE = re.compile(r"(\d+)\.0+")
_SCIENTIFIC_RE = re.compile(r"\d(?:\.\d+)?[eE]\+?\d+")


def _digit_text(raw: object) -> tuple[str | None, bool]:
    """A phone or ID cell as text, undoing Excel's numeric storage; the flag says digits were lost to a float."""
    if isinstance(raw, bool):
        return _clean_text(raw), False
    if isinstance(raw, int):
        return str(raw), False
    if isinstance(raw, float):
        if raw.is_integer():
            return str(int(raw)), abs(raw) >= 2 ** 53
        return repr(raw), False
    text = _clean_text(raw)
    if text is None:
        return None, False
    if text[0] in "'`":  # Excel's "store as text" apostrophe
        text = text[1:].strip()
    if text.startswith('="') and text.endswith('"'):
        text = text[2:-1].strip()
    match = _DIGITS_FLOAT_RE.fullmatch(text)
    if match:
        text = match[1]
    if _SCIENTIFIC_RE.fullmatch(text):
        return text, True
    return (text or None), False


_ID_WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
_ID_CHECK_CHARS = "10X98765432"
_ID_RE = re.compile(r"\d{17}[\dX]")


def _id_check_char(body17: str) -> str:
    """The ISO 7064 mod 11-2 check character of the first 17 digits of an ID number."""
    return _ID_CHECK_CHARS[sum(int(c) * w for c, w in zip(body17, _ID_WEIGHTS, strict=True)) % 11]


_PHONE_SEPARATORS_RE = re.compile(r"[\s\-().‐‑–—]+")
_PHONE_MULTIPLE_RE = re.compile(r"[/,;、，；|]|\d{11}\D+\d{11}")
_CN_MOBILE_FAST_RE = re.compile(r"(?:\+86|0086|86)?(1\d{10})")


def _cn_mobile_pattern() -> re.Pattern[str] | None:
    """phonenumbers' own pattern for mainland mobile numbers (None if its metadata lacks one)."""
    metadata = phonenumbers.PhoneMetadata.metadata_for_region("CN")
    mobile = metadata.mobile if metadata is not None else None
    pattern = mobile.national_number_pattern if mobile is not None else None
    return re.compile(pattern) if isinstance(pattern, str) else None


_CN_MOBILE_PATTERN = _cn_mobile_pattern()


@functools.lru_cache(maxsize=65536)
def _phone_slow(text: str) -> tuple[str | None, str | None]:
    """Full phonenumbers parse of a phone text: (E.164, None) or (None, error code)."""
    try:
        number = phonenumbers.parse(text, "CN")
    except phonenumbers.NumberParseException:
        return None, _E + "phone_invalid"
    if number.country_code != 86 or not phonenumbers.is_valid_number(number):
        return None, _E + "phone_invalid"
    kind = phonenumbers.number_type(number)
    if kind == phonenumbers.PhoneNumberType.MOBILE:
        return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164), None
    if kind in (phonenumbers.PhoneNumberType.FIXED_LINE, phonenumbers.PhoneNumberType.FIXED_LINE_OR_MOBILE):
        return None, _E + "phone_landline"
    return None, _E + "phone_invalid"


def normalize_phone(text: str) -> tuple[str | None, str | None]:
    """A phone text as an E.164 mainland mobile: (e164, None), or (None, error code)."""
    if _PHONE_MULTIPLE_RE.search(text):
        return None, _E + "phone_multiple"
    compact = _PHONE_SEPARATORS_RE.sub("", text)
    match = _CN_MOBILE_FAST_RE.fullmatch(compact)
    if match and _CN_MOBILE_PATTERN is not None:
        national = match[1]
        if _CN_MOBILE_PATTERN.fullmatch(national):
            return "+86" + national, None
        return None, _E + "phone_invalid"
    return _phone_slow(compact)


# ---------------------------------------------------------------------------------------------
# Reading files

_MAX_CSV_BYTES = 256 * 1024 * 1024  # ~1M rows; anything larger is not a township roster


def _read_bytes(path: Path) -> bytes:
    """The whole file, or RosterFileError when it is missing, unreadable or far too large."""
    try:
        with open(path, "rb") as handle:
            data = handle.read(_MAX_CSV_BYTES + 1)
        if len(data) > _MAX_CSV_BYTES:
            raise RosterFileError("roster.file.too_large", max_mb=str(_MAX_CSV_BYTES // (1024 * 1024)))
        return data
    except FileNotFoundError:
        raise RosterFileError("roster.file.not_found", path=str(path)) from None
    except (IsADirectoryError, PermissionError, OSError) as exc:
        raise RosterFileError("roster.file.unreadable", path=str(path), reason=exc.strerror or str(exc)) from None


def _decode_csv_bytes(data: bytes) -> str:
    """CSV bytes as text: UTF-8 (with or without BOM), else GB18030 (a superset of GBK)."""
    if data.startswith((b"\xff\xfe", b"\xfe\xff")) or b"\x00" in data:
        raise RosterFileError("roster.file.binary")
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError:
        pass
    try:
        return data.decode("gb18030")
    except UnicodeDecodeError:
        raise RosterFileError("roster.file.encoding") from None


def _csv_records(text: str) -> Iterator[tuple[int, list[str]]]:
    """(row number, cells) for every record of a CSV text; a record spanning lines is one row."""
    reader = csv.reader(io.StringIO(text, newline=""))
    row_number = 0
    try:
        for cells in reader:
            row_number += 1
            yield row_number, cells
    except csv.Error as exc:
        raise RosterFileError("roster.file.csv_invalid", row=row_number + 1, reason=str(exc)) from None


def _xlsx_records(path: Path) -> tuple[Iterator[tuple[int, Sequence[object]]], int | None, date]:
    """(row number, cells) from the first sheet of a workbook, its row count if known, and its date epoch."""
    import openpyxl  # imported here: only .xlsx needs it

    try:
        workbook = openpyxl.load_workbook(path, read_only=True, data_only=True)
    except Exception as exc:  # BadZipFile, KeyError, ValueError...: openpyxl raises a wide variety on corrupt files
        raise RosterFileError("roster.file.xlsx_invalid", reason=str(exc) or type(exc).__name__) from None
    try:
        if not workbook.worksheets:
            raise RosterFileError("roster.file.empty")
        sheet = workbook.worksheets[0]
        known_rows = getattr(sheet, "max_row", None)
        if hasattr(sheet, "reset_dimensions"):
            sheet.reset_dimensions()  # a wrong <dimension> would otherwise cut rows and columns short
        epoch = workbook.epoch.date() if isinstance(workbook.epoch, datetime) else _EXCEL_EPOCH_1900
    except RosterFileError:
        workbook.close()
        raise
    except Exception as exc:
        workbook.close()
        raise RosterFileError("roster.file.xlsx_invalid", reason=str(exc) or type(exc).__name__) from None

    def records() -> Iterator[tuple[int, Sequence[object]]]:
        row_number = 0
        try:
            for cells in sheet.iter_rows(values_only=True):
                row_number += 1
                yield row_number, cells
        except RosterFileError:
            raise
        except Exception as exc:
            raise RosterFileError("roster.file.xlsx_invalid", reason=f"row {row_number + 1}: {exc}") from None
        finally:
            workbook.close()

    return records(), known_rows, epoch


def _is_blank_row(cells: Sequence[object]) -> bool:
    """True when no cell of the row holds anything but whitespace."""
    for cell in cells:
        if cell is None:
            continue
        if isinstance(cell, str):
            if cell.strip():
                return False
        else:
            return False
    return True


_HEADER_SEARCH_ROWS = 10  # a title row or two above the header is common in township spreadsheets


class RosterReader:
    """An opened roster: its column mapping, then its data rows as ChildRow or RowRejected when iterated."""

    columns: dict[str, str]
    unknown_columns: list[str]
    duplicate_columns: list[str]
    total_rows: int | None
    header_row: int

    def __init__(self, records: Iterator[tuple[int, Sequence[object]]], *, today: date,
                 epoch: date = _EXCEL_EPOCH_1900, known_rows: int | None = None,
                 count_rows: Callable[[int], int] | None = None) -> None:
        self._today = today
        self._epoch = epoch
        self._records = records
        self._buffer: list[tuple[int, Sequence[object]]] = []
        try:
            self._find_header()
            self._check_has_rows()
        except BaseException:
            self.close()
            raise
        if count_rows is not None:
            self.total_rows = count_rows(self.header_row)
        elif known_rows is not None and known_rows >= self.header_row:
            self.total_rows = known_rows - self.header_row
        else:
            self.total_rows = None
        self._iterated = False

    def _find_header(self) -> None:
        """Find the header row (the first non-blank row, or the first within a few that names every required column)."""
        candidates: list[tuple[int, Sequence[object]]] = []
        for row_number, cells in self._records:
            if _is_blank_row(cells):
                continue
            candidates.append((row_number, cells))
            mapping = self._map_header(cells)
            if not self._missing_columns(mapping[0]):
                break
            if len(candidates) >= _HEADER_SEARCH_ROWS:
                break
        if not candidates:
            raise RosterFileError("roster.file.empty")
        chosen = candidates[0]
        for candidate in candidates:
            if not self._missing_columns(self._map_header(candidate[1])[0]):
                chosen = candidate
                break
        self.header_row, header_cells = chosen
        # rows after the chosen header that were read while searching are data rows
        self._buffer = [c for c in candidates if c[0] > self.header_row]
        indexes, columns, unknown, duplicates = self._map_header(header_cells)
        missing = self._missing_columns(indexes)
        if missing:
            raise RosterFileError("roster.file.missing_columns", columns="、".join(missing),
                                  row=self.header_row)
        self._indexes = indexes
        self.columns = columns
        self.unknown_columns = unknown
        self.duplicate_columns = duplicates

    @staticmethod
    def _map_header(cells: Sequence[object]) -> tuple[dict[str, int], dict[str, str], list[str], list[str]]:
        """Map a header row: field key → index, field key → header text, unknown headers, duplicate headers."""
        indexes: dict[str, int] = {}
        columns: dict[str, str] = {}
        unknown: list[str] = []
        duplicates: list[str] = []
        for index, cell in enumerate(cells):
            text = _clean_text(cell, _fold_free_text) if cell is not None else None
            if text is None:
                continue
            key = _match_header(text)
            if key is None:
                unknown.append(text)
            elif key in indexes:
                duplicates.append(text)
            else:
                indexes[key] = index
                columns[key] = text
        return indexes, columns, unknown, duplicates

    @staticmethod
    def _missing_columns(indexes: dict[str, int]) -> list[str]:
        """Canonical headers of required columns the header lacks."""
        missing = [spec.header for spec in FIELDS if spec.required and spec.key not in indexes]
        if "birth_date" not in indexes and "id_number" not in indexes:
            missing.append(FIELD_BY_KEY["birth_date"].header)
        return missing

    def _check_has_rows(self) -> None:
        """Raise roster.file.no_rows unless a non-blank data row follows the header."""
        while not self._buffer:
            try:
                row_number, cells = next(self._records)
            except StopIteration:
                raise RosterFileError("roster.file.no_rows") from None
            if not _is_blank_row(cells):
                self._buffer.append((row_number, cells))

    def __iter__(self) -> Iterator[ChildRow | RowRejected]:
        """Every non-blank data row, in file order, as a ChildRow or a RowRejected; readable once."""
        if self._iterated:
            raise RuntimeError("a RosterReader can be iterated only once")
        self._iterated = True
        parse_row = _RowParser(self._indexes, self.columns, today=self._today, epoch=self._epoch).parse
        seen: dict[tuple[str, ...], int] = {}  # identity + name → first row
        for source in (self._buffer, self._records):
            for row_number, cells in source:
                if _is_blank_row(cells):
                    continue
                try:
                    result = parse_row(row_number, cells)
                except Exception as exc:  # never let one odd row stop an import
                    result = RowRejected(row_number, (FieldError(
                        FIELD_BY_KEY["child_name"].header, _E + "unexpected",
                        {"value": f"{type(exc).__name__}: {exc}"[:200]}),))
                if isinstance(result, ChildRow):
                    # the same child twice; the same ID number under two names is left to the store
                    identity = (*result.identity(), result.name)
                    first = seen.get(identity)
                    if first is not None:
                        column_key = "id_number" if identity[0] == "id" else "child_name"
                        result = RowRejected(row_number, (FieldError(
                            self.columns.get(column_key, FIELD_BY_KEY[column_key].header), _E + "duplicate_row",
                            {"row": str(first)}),))
                    else:
                        seen[identity] = row_number
                yield result
        self._buffer = []

    def close(self) -> None:
        """Release the file (only .xlsx keeps one open)."""
        close = getattr(self._records, "close", None)
        if close is not None:
            close()

    def __enter__(self) -> RosterReader:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


def open_roster(path: Path, *, today: date) -> RosterReader:
    """Open a roster (.xlsx, or CSV in UTF-8/UTF-8 BOM/GBK) and read its header; raises RosterFileError."""
    path = Path(path)
    data_head = b""
    try:
        with open(path, "rb") as handle:
            data_head = handle.read(8)
    except FileNotFoundError:
        raise RosterFileError("roster.file.not_found", path=str(path)) from None
    except OSError as exc:
        raise RosterFileError("roster.file.unreadable", path=str(path), reason=exc.strerror or str(exc)) from None
    if not data_head:
        raise RosterFileError("roster.file.empty")
    if data_head.startswith(b"\xd0\xcf\x11\xe0"):  # OLE2: an old .xls (or .et) workbook
        raise RosterFileError("roster.file.xls_unsupported")
    if data_head.startswith(b"PK\x03\x04"):
        records, known_rows, epoch = _xlsx_records(path)
        return RosterReader(records, today=today, epoch=epoch, known_rows=known_rows)
    if path.suffix.lower() in (".xlsx", ".xlsm"):
        raise RosterFileError("roster.file.xlsx_invalid", reason="not a zip archive")
    text = _decode_csv_bytes(_read_bytes(path))

    def count_rows(header_row: int) -> int:
        return sum(1 for row_number, cells in _csv_records(text)
                   if row_number > header_row and "".join(cells).strip())

    return RosterReader(_csv_records(text), today=today, count_rows=count_rows)


# ---------------------------------------------------------------------------------------------
# One row


_NON_TEXT_KEYS = frozenset({"birth_date", "id_number", "father_phone", "mother_phone", "guardian_phone",
                            "helper_phone"})

_CODED_KEYS = frozenset({"sex", "hukou", "school_status", "guardianship_type", "guardianship_quality", "channel"})


class _RowParser:
    """Turns the cells of one data row into a ChildRow or a RowRejected."""

    def __init__(self, indexes: dict[str, int], columns: dict[str, str], *, today: date, epoch: date) -> None:
        self.today = today
        self.epoch = epoch
        self.slots = [(spec.key, indexes.get(spec.key, -1)) for spec in FIELDS]
        self.headers = {spec.key: columns.get(spec.key, spec.header) for spec in FIELDS}
        self.present = frozenset(key for key, index in self.slots if index >= 0)
        self.text_slots = [(key, index, _MAX_LENGTH.get(key, _DEFAULT_MAX_LENGTH),
                            _fold_coded_text if key in _CODED_KEYS else _fold_free_text,
                            _HUKOU_PLACEHOLDERS if key == "hukou" else _PLACEHOLDERS)
                           for key, index in self.slots if index >= 0 and key not in _NON_TEXT_KEYS]
        self.raw_slots = [(key, index) for key, index in self.slots if key in _NON_TEXT_KEYS]
        self.blank_text = dict.fromkeys(key for key, _ in self.slots if key not in _NON_TEXT_KEYS)

    def parse(self, row_number: int, cells: Sequence[object]) -> ChildRow | RowRejected:
        """Validate one row; every problem in it is reported, not only the first."""
        width = len(cells)
        raw: dict[str, object] = {key: cells[index] if 0 <= index < width else None
                                  for key, index in self.raw_slots}
        errors: list[FieldError] = []
        headers = self.headers

        def error(key: str, code: str, **params: str) -> None:
            errors.append(FieldError(headers[key], _E + code, params))

        text: dict[str, str | None] = self.blank_text.copy()
        for key, index, max_length, fold, placeholders in self.text_slots:
            if index >= width:
                continue
            cell = cells[index]
            value: str | None
            if type(cell) is str:  # the common case, inlined: see _clean_text
                if not cell:
                    continue
                value = cell if cell.isascii() else fold(cell)
                if not value.isprintable():
                    value = _CONTROL_RE.sub(" ", value)
                value = value.strip()
                if not value or (len(value) <= 4 and value.lower() in placeholders):
                    continue
            else:
                value = _clean_text(cell, fold, placeholders)
            if value is not None and len(value) > max_length:
                error(key, "too_long", max=str(max_length))
                value = None
            text[key] = value

        name = text["child_name"]
        for key in ("child_name", "township", "village", "guardianship_type"):
            if text[key] is None and not any(e.column == headers[key] for e in errors):
                error(key, "required")

        sex: str | None = None
        if text["sex"] is not None:
            sex = _lookup_label(_SEX, text["sex"])
            if sex is None:
                error("sex", "sex_invalid", value=text["sex"])

        # ID number, then birth date
        id_number: str | None = None
        id_birth: date | None = None
        id_text, lost_digits = _digit_text(raw["id_number"])
        if id_text is not None:
            candidate = _SPACES_RE.sub("", id_text).upper()
            if lost_digits or _SCIENTIFIC_RE.fullmatch(candidate):
                error("id_number", "scientific_notation", value=id_text)
            elif not _ID_RE.fullmatch(candidate):
                error("id_number", "id_format", value=id_text)
            elif _id_check_char(candidate[:17]) != candidate[17]:
                error("id_number", "id_checksum", value=id_text)
            else:
                try:
                    id_birth = date(int(candidate[6:10]), int(candidate[10:12]), int(candidate[12:14]))
                except ValueError:
                    error("id_number", "id_birth_invalid", value=id_text)
                else:
                    id_number = candidate

        birth_raw = raw["birth_date"]
        birth_text = _clean_text(birth_raw)
        birth: date | None = None
        birth_key = "birth_date"
        if birth_text is not None:
            birth = parse_date(birth_raw, self.epoch)
            if birth is None:
                error("birth_date", "date_invalid", value=birth_text)
            elif id_birth is not None and id_birth != birth:
                error("birth_date", "id_birth_mismatch", id_birth=id_birth.isoformat(), value=birth.isoformat())
                birth = None
        elif id_birth is not None:
            birth, birth_key = id_birth, "id_number"
        elif id_text is None:
            if "birth_date" in self.present and "id_number" in self.present:
                error("birth_date", "birth_or_id_required")
            elif "birth_date" in self.present:
                error("birth_date", "required")
            else:
                error("id_number", "birth_or_id_required")
        if birth is not None:
            if birth > self.today:
                error(birth_key, "date_in_future", value=birth.isoformat())
            else:
                age = _age_on(birth, self.today)
                if age >= 18:
                    error(birth_key, "too_old", value=birth.isoformat(), age=str(age))

        if id_number is not None:
            id_sex = "male" if int(id_number[16]) % 2 else "female"
            if sex is None and text["sex"] is None:
                sex = id_sex
            elif sex is not None and sex != id_sex:
                error("sex", "id_sex_mismatch", value=text["sex"] or "", id_sex=_SEX_LABEL[id_sex])

        has_hukou = True
        if text["hukou"] is not None:
            hukou = _HUKOU.get(text["hukou"])
            if hukou is None:
                hukou = _HUKOU.get(_fold_label(text["hukou"]))
            if hukou is None:
                error("hukou", "hukou_invalid", value=text["hukou"])
            else:
                has_hukou = hukou

        school_status = None
        if text["school_status"] is not None:
            school_status = _lookup_label(_SCHOOL_STATUS, text["school_status"])
            if school_status is None:
                error("school_status", "school_status_invalid", value=text["school_status"])

        guardianship_type = None
        if text["guardianship_type"] is not None:
            guardianship_type = _lookup_label(_GUARDIANSHIP_TYPE, text["guardianship_type"])
            if guardianship_type is None:
                error("guardianship_type", "guardianship_type_invalid", value=text["guardianship_type"])

        guardianship_quality = None
        if text["guardianship_quality"] is not None:
            guardianship_quality = _lookup_label(_GUARDIANSHIP_QUALITY, text["guardianship_quality"])
            if guardianship_quality is None:
                error("guardianship_quality", "guardianship_quality_invalid", value=text["guardianship_quality"])

        channel = "sms"
        if text["channel"] is not None:
            found = _lookup_label(_CHANNEL, text["channel"])
            if found is None:
                error("channel", "channel_invalid", value=text["channel"])
            else:
                channel = found

        phones: dict[str, str | None] = {}
        for role in ("father", "mother", "guardian", "helper"):
            key = role + "_phone"
            phone_text, lost_digits = _digit_text(raw[key])
            phones[role] = None
            if phone_text is None:
                continue
            if lost_digits or _SCIENTIFIC_RE.fullmatch(phone_text):
                error(key, "scientific_notation", value=phone_text)
                continue
            e164, code = normalize_phone(phone_text)
            if code is not None:
                errors.append(FieldError(headers[key], code, {"value": phone_text}))
            phones[role] = e164

        if errors:
            return RowRejected(row_number, tuple(errors))

        special = text["special_circumstances"]
        flags: set[str] = set()
        if special is not None:
            for pattern, found_flags in _FLAG_PATTERNS:
                if pattern.search(special):
                    flags |= found_flags

        people: list[PersonRow] = []
        for role in ("father", "mother", "guardian", "helper"):
            person_name = text[role + "_name"]
            if person_name is None and phones[role] is None:
                continue
            people.append(PersonRow(
                role=role, name=person_name, phone=phones[role],
                relationship=text["guardian_relationship"] if role == "guardian" else None,
                workplace=text.get(role + "_workplace") if role in ("father", "mother") else None,
                channel=channel if role == "guardian" else "sms"))

        assert name is not None and birth is not None and guardianship_type is not None
        assert text["township"] is not None and text["village"] is not None
        return ChildRow(
            row_number=row_number, name=name, sex=sex, birth_date=birth, id_number=id_number,
            has_hukou=has_hukou, school_status=school_status, school=text["school"], county=text["county"],
            township=text["township"], village=text["village"], guardianship_type=guardianship_type,
            guardianship_quality=guardianship_quality, special_circumstances=special,
            special_flags=frozenset(flags), people=tuple(people))


# ---------------------------------------------------------------------------------------------
# Messages


def _format(template: str, params: dict[str, object]) -> str:
    """%-format a translated template, falling back to the bare template if it does not fit the params."""
    try:
        return template % params
    except (KeyError, ValueError, TypeError):
        return template


def format_row_error(rejected: RowRejected, gettext: Callable[[str], str]) -> list[str]:
    """One line per problem in a rejected row, e.g. `第12行 父亲电话: 不是有效的手机号（1380013）`."""
    prefix = _format(gettext("roster.row_prefix"), {"row": rejected.row_number})
    lines = []
    for problem in rejected.errors:
        message = _format(gettext(problem.code), dict(problem.params))
        value = problem.params.get("value")
        if value and "%(value)" not in gettext(problem.code):
            message += _format(gettext("roster.value_suffix"), {"value": value})
        lines.append(f"{prefix} {problem.column}: {message}")
    return lines


def format_file_error(err: RosterFileError, gettext: Callable[[str], str]) -> str:
    """A human sentence for a file-level error, e.g. `缺少必需的列：乡镇、村`."""
    return _format(gettext(err.code), dict(err.params))


_MESSAGES_DIR = Path(__file__).resolve().parents[2] / "messages"


@functools.lru_cache(maxsize=8)
def roster_gettext(locale: str = "zh_Hans") -> Callable[[str], str]:
    """A gettext for roster messages read straight from messages/<locale>/LC_MESSAGES/roster.po (no .mo needed)."""
    from babel.messages.pofile import read_po

    po_path = _MESSAGES_DIR / locale / "LC_MESSAGES" / "roster.po"
    catalog: dict[str, str] = {}
    if po_path.exists():
        with open(po_path, "rb") as handle:
            for message in read_po(handle):
                if isinstance(message.id, str) and message.id and isinstance(message.string, str) \
                        and message.string:
                    catalog[message.id] = message.string

    def gettext(message_id: str) -> str:
        return catalog.get(message_id, message_id)

    return gettext
