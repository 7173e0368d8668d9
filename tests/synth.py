"""Synthetic but realistic registers for crash tests and benchmarks (deterministic per seed)."""

from __future__ import annotations

import json
import random
from collections.abc import Iterator
from pathlib import Path
from typing import Any

SENDERS = [
    ("Ủy ban nhân dân tỉnh Quảng Ninh", "UBND"),
    ("Sở Nội vụ", "SNV"),
    ("Sở Tài chính", "STC"),
    ("Sở Nông nghiệp và Môi trường", "SNNMT"),
    ("Công an tỉnh Quảng Ninh", "CAT"),
    ("Bảo hiểm xã hội tỉnh Quảng Ninh", "BHXH"),
    ("Sở Y tế", "SYT"),
    ("Trung tâm Phục vụ hành chính công tỉnh", "TTPVHCC"),
]
TYPES = [
    ("Công văn", None),
    ("Quyết định", "QĐ"),
    ("Kế hoạch", "KH"),
    ("Thông báo", "TB"),
    ("Báo cáo", "BC"),
    ("Tờ trình", "TTr"),
    ("Giấy mời", "GM"),
    ("Hướng dẫn", "HD"),
]
TOPICS = [
    "đăng ký đất đai, cấp Giấy chứng nhận quyền sử dụng đất",
    "triển khai công tác phòng, chống thiên tai và tìm kiếm cứu nạn",
    "giao chỉ tiêu kế hoạch phát triển kinh tế - xã hội",
    "tổ chức tiêm chủng mở rộng cho trẻ em dưới 5 tuổi",
    "rà soát hộ nghèo, hộ cận nghèo",
    "đẩy mạnh cải cách hành chính, chuyển đổi số",
    "quyết toán ngân sách xã",
    "xây dựng nông thôn mới nâng cao",
    "đăng ký hộ tịch, cấp bản sao trích lục khai sinh",
    "bầu cử đại biểu Hội đồng nhân dân các cấp",
    "sắp xếp đơn vị hành chính cấp xã",
    "phòng cháy, chữa cháy rừng mùa khô",
]


def documents(n: int, seed: int = 1, start_year: int = 2006) -> Iterator[dict[str, Any]]:
    """n incoming documents spread over 20 years, ~arrival-ordered, valid under the schema."""
    rnd = random.Random(seed)
    per_year = max(1, n // 20)
    for i in range(n):
        year = start_year + min(19, i // per_year)
        number_in_year = i % per_year + 1 if i // per_year < 20 else i - 19 * per_year + 1
        day = 1 + (number_in_year * 364) // (per_year + 1)
        month = min(12, 1 + day // 31)
        dom = 1 + day % 28
        sender, abbr = rnd.choice(SENDERS)
        type_name, type_abbr = rnd.choice(TYPES)
        notation = f"{abbr}-VP" if type_abbr is None else f"{type_abbr}-{abbr}"
        subject = ("V/v " if type_abbr is None else "Về việc ") + rnd.choice(TOPICS)
        yield {
            "kind": "incoming",
            "TypeName": type_name,
            "CodeNumber": str(rnd.randint(1, 3000)),
            "CodeNotation": notation,
            "IssuedDate": f"{year}-{month:02d}-{dom:02d}",
            "OrganName": sender,
            "Subject": f"{subject} (đợt {i % 97 + 1})",
            "Language": "01",
            "PageAmount": rnd.randint(1, 12),
            "ArrivalDate": f"{year}-{month:02d}-{dom:02d}",
            "ArrivalNumber": number_in_year,
            "SignerInfo": {"Position": "Phó Chủ tịch", "FullName": "Nguyễn Văn Bình"},
            "ToPlaces": "Chủ tịch UBND xã; Công chức Văn phòng - Thống kê",
        }


def write_jsonl(path: Path, n: int, seed: int = 1) -> Path:
    with path.open("w", encoding="utf-8") as fh:
        for doc in documents(n, seed):
            fh.write(json.dumps(doc, ensure_ascii=False) + "\n")
    return path
