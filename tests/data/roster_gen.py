"""(A copy of ../shared/acceptance/lib/roster_gen.py, so the tests need nothing outside the repository.)

Synthetic rosters (花名册) whose breakdown matches a published one from the seed.

python roster_gen.py tianjin OUT.csv      1,236 children, GBK, alias headers, shuffled columns
python roster_gen.py jilin OUT.csv        50,108 children, UTF-8 BOM
python roster_gen.py bad OUT.csv          50 good rows and 8 bad ones (row numbers on stderr)
All ages are on AS_OF (2026-06-30).
"""
import csv
import datetime as dt
import random
import sys

AS_OF = dt.date(2026, 6, 30)
SURNAMES = "王李张刘陈杨黄赵吴周徐孙马朱胡郭何高林罗郑梁谢宋唐许韩冯邓曹彭曾肖田董袁潘于蒋蔡余杜叶程苏魏吕丁任沈姚卢姜崔钟谭陆汪范金石廖贾夏韦付方白邹孟熊秦邱江尹薛闫段雷侯龙史陶黎贺顾毛郝龚邵万钱严覃武戴莫孔向汤"
GIVEN = "子涵浩宇欣怡梓轩雨桐一诺俊杰佳怡思远嘉豪语嫣明轩晨曦文博婉婷志强春燕国庆秀英建华丽娟"
TOWNS = {"武清区": ["大王古庄镇", "崔黄口镇"], "宝坻区": ["黄庄镇", "八门城镇"], "蓟州区": ["下营镇", "罗庄子镇"]}
GUARD_LABEL = {"grandparents": ["祖父母监护", "外祖父母监护", "(外)祖父母监护"],
               "relatives": ["亲戚朋友监护", "亲属监护"],
               "unattended": ["无人监护"],
               "one_parent_incapable": ["父母一方外出另一方无监护能力", "一方无监护能力"]}
REL = {"grandparents": ["爷爷", "奶奶", "外公", "外婆", "祖母", "外祖父"],
       "relatives": ["姑姑", "舅舅", "叔叔", "姨妈"],
       "one_parent_incapable": ["母亲", "父亲"]}
PREFIXES = [str(p) for p in [*range(130, 140), 150, 151, 152, 155, 156, 157, 158, 159, 147, 166, 173, 176, 177,
                             *range(180, 190), 198, 199]]


def id_check(body17):
    w = [7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2]
    return "10X98765432"[sum(int(c) * k for c, k in zip(body17, w)) % 11]


def id_number(rng, birth, female):
    seq = rng.randrange(0, 99) * 10 + (rng.choice([0, 2, 4, 6, 8]) if female else rng.choice([1, 3, 5, 7, 9]))
    body = f"120221{birth:%Y%m%d}{seq:03d}"
    return body + id_check(body)


def phone(rng):
    n = f"{rng.choice(PREFIXES)}{rng.randrange(10**8):08d}"
    style = rng.randrange(4)
    return [n, f"+86 {n[:3]} {n[3:7]} {n[7:]}", f"{n[:3]}-{n[3:7]}-{n[7:]}", f"86{n}"][style]


def date_text(rng, d):
    return [d.isoformat(), f"{d.year}/{d.month}/{d.day}", f"{d.year}年{d.month}月{d.day}日", f"{d:%Y%m%d}"][rng.randrange(4)]


def birth_for_age(rng, age):
    # whole years on AS_OF == age
    latest = AS_OF.replace(year=AS_OF.year - age)
    return latest - dt.timedelta(days=rng.randrange(0, 360))


def children(n_by_guard, n_by_age, dropout, no_hukou, poor, seed):
    rng = random.Random(seed)
    guards = [g for g, n in n_by_guard.items() for _ in range(n)]
    ages = [a for band, n in n_by_age.items() for a in [band] * n]
    rng.shuffle(guards)
    rng.shuffle(ages)
    rows = []
    for i, (g, band) in enumerate(zip(guards, ages)):
        lo, hi = {"0-5": (0, 5), "6-13": (6, 13), "14-16": (14, 15)}[band]
        age = rng.randint(lo, hi)
        birth = birth_for_age(rng, age)
        female = rng.random() < 0.47
        county = rng.choice(list(TOWNS))
        r = {"name": rng.choice(SURNAMES) + rng.choice(GIVEN) + rng.choice(GIVEN), "sex": "女" if female else "男",
             "birth": birth, "female": female, "county": county, "town": rng.choice(TOWNS[county]),
             "village": f"{rng.choice('东西南北前后大小')}{rng.choice('庄营屯沟')}村", "guard": g, "age": age,
             "school": "学龄前" if age < 6 else "在读", "hukou": "是", "quality": rng.choice(["较好", "一般"]),
             "note": ""}
        rows.append(r)
    school_age = [r for r in rows if r["age"] >= 8]
    for r in rng.sample(school_age, dropout):
        r["school"] = "辍学"
    for r in rng.sample(rows, no_hukou):
        r["hukou"] = "否"
    guarded = [r for r in rows if r["guard"] in ("grandparents", "relatives")]
    for r in rng.sample(guarded, poor):
        r["quality"] = "差"
    for r in rng.sample(rows, max(1, len(rows) // 60)):
        r["note"] = rng.choice(["残疾", "患病", "肢体残疾", "重病"])
    return rng, rows


HEADERS = [  # (key, header variants)
    ("name", ["儿童姓名", "姓名", "留守儿童姓名"]), ("sex", ["性别"]), ("birth", ["出生日期", "出生年月日"]),
    ("id", ["身份证号", "身份证号码"]), ("hukou", ["户口登记", "是否登记户口"]), ("school", ["就学状态", "就学情况"]),
    ("county", ["县", "县(市、区)"]), ("town", ["乡镇", "乡镇(街道)"]), ("village", ["村", "村(社区)"]),
    ("guard", ["监护类型", "留守类型"]), ("quality", ["监护情况", "监护状况"]), ("note", ["特殊情况", "备注"]),
    ("father", ["父亲姓名"]), ("father_phone", ["父亲电话", "父亲手机"]), ("father_work", ["父亲务工地"]),
    ("mother", ["母亲姓名"]), ("mother_phone", ["母亲电话", "母亲联系电话"]), ("mother_work", ["母亲务工地"]),
    ("guardian", ["监护人姓名", "委托监护人姓名"]), ("guardian_rel", ["监护人关系", "与儿童关系"]),
    ("guardian_phone", ["监护人电话", "监护人手机"]),
]


def render(rng, rows, alias, shuffle):
    cols = list(HEADERS)
    if shuffle:
        rng.shuffle(cols)
    header = [rng.choice(h) if alias else h[0] for _, h in cols]
    out = [header]
    for r in rows:
        surname = r["name"][0]
        vals = {"name": r["name"], "sex": r["sex"], "county": r["county"], "town": r["town"],
                "village": r["village"], "guard": rng.choice(GUARD_LABEL[r["guard"]]), "quality": r["quality"],
                "note": r["note"], "school": r["school"], "hukou": r["hukou"],
                "father": surname + rng.choice(GIVEN) + rng.choice(GIVEN), "father_phone": phone(rng),
                "father_work": rng.choice(["北京", "天津滨海新区", "河北廊坊", "江苏苏州"]),
                "mother": rng.choice(SURNAMES) + rng.choice(GIVEN) + rng.choice(GIVEN), "mother_phone": phone(rng),
                "mother_work": rng.choice(["北京", "天津", "山东济南", ""]),
                "guardian": "", "guardian_rel": "", "guardian_phone": ""}
        if r["guard"] != "unattended":
            vals["guardian"] = rng.choice(SURNAMES) + rng.choice(GIVEN) + rng.choice(GIVEN)
            vals["guardian_rel"] = rng.choice(REL[r["guard"]])
            vals["guardian_phone"] = phone(rng)
        if rng.random() < 0.3:  # ID number given, birth date left blank
            vals["id"] = id_number(rng, r["birth"], r["female"])
            vals["birth"] = ""
        else:
            vals["id"] = ""
            vals["birth"] = date_text(rng, r["birth"])
        out.append([vals[k] for k, _ in cols])
    return out


def write(path, table, encoding):
    with open(path, "w", newline="", encoding=encoding) as f:
        csv.writer(f).writerows(table)


def main():
    kind, path = sys.argv[1], sys.argv[2]
    if kind == "tianjin":
        rng, rows = children({"grandparents": 970, "relatives": 33, "unattended": 35, "one_parent_incapable": 198},
                             {"0-5": 279, "6-13": 834, "14-16": 123}, 7, 13, 356, seed=1236)
        write(path, render(rng, rows, alias=True, shuffle=True), "gb18030")
    elif kind == "jilin":
        rng, rows = children({"grandparents": 40757, "relatives": 1187, "unattended": 1374,
                              "one_parent_incapable": 6790},
                             {"0-5": 11000, "6-13": 33108, "14-16": 6000}, 120, 200, 12448, seed=50108)
        write(path, render(rng, rows, alias=False, shuffle=False), "utf-8-sig")
    elif kind == "bad":
        rng, rows = children({"grandparents": 40, "relatives": 4, "unattended": 2, "one_parent_incapable": 4},
                             {"0-5": 10, "6-13": 35, "14-16": 5}, 1, 1, 5, seed=7)
        table = render(rng, rows, alias=False, shuffle=False)
        h = table[0]
        col = {name: h.index(name) for name in h}
        bad = []

        def spoil(template_row, field, value, why):
            row = list(table[template_row])
            row[col[field]] = value
            if field != "身份证号":
                row[col["身份证号"]] = ""
                if not row[col["出生日期"]]:
                    row[col["出生日期"]] = "2010-01-01"
            table.append(row)
            bad.append((len(table), field, why))  # 1-based file line == data row number + 1 header

        spoil(1, "父亲电话", "1380013", "phone too short")
        spoil(2, "监护人电话", "138001380001", "twelve digits")
        spoil(3, "身份证号", "12022120100101123X" if id_check("12022120100101123") != "X" else "120221201001011231",
              "bad check digit")
        spoil(4, "儿童姓名", "", "missing name")
        spoil(5, "出生日期", "2010-13-45", "impossible date")
        spoil(6, "监护类型", "不知道", "unknown guardianship type")
        spoil(7, "乡镇", "", "missing township")
        spoil(8, "出生日期", "1990-01-01", "adult, not a child")
        write(path, table, "utf-8")
        for line, field, why in bad:
            print(f"{line}\t{field}\t{why}", file=sys.stderr)
    else:
        sys.exit(__doc__)


if __name__ == "__main__":
    main()
