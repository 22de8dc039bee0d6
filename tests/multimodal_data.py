"""Small generated image folders, Chinese and English text corpora for the multimodal tests."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd


def shape_image(kind: str, rng: np.random.Generator, size: int = 20, mode: str = "RGB"):
    """A learnable class: a bright square on the left, on the right, or horizontal stripes."""
    from PIL import Image

    pixels = rng.integers(0, 60, (size, size)).astype(np.uint8)
    half = size // 2
    if kind == "left":
        pixels[4:-4, 1:half - 1] = 230
    elif kind == "right":
        pixels[4:-4, half + 1:-1] = 230
    else:
        pixels[::4] = 230
    image = Image.fromarray(pixels, mode="L")
    return image if mode == "L" else image.convert(mode)


def write_image_folder(root: Path, per_class: int = 24, size: int = 20, seed: int = 0, classes=("left", "right", "stripes")) -> Path:
    rng = np.random.default_rng(seed)
    for kind in classes:
        (root / kind).mkdir(parents=True, exist_ok=True)
        for i in range(per_class):
            shape_image(kind, rng, size).save(root / kind / f"{kind}_{i:03d}.png")
    return root


TOPICS_ZH = {
    "体育": ["足球", "比赛", "球员", "进球", "冠军", "教练", "篮球", "联赛", "球迷", "训练"],
    "财经": ["股票", "市场", "银行", "利率", "投资", "经济", "基金", "公司", "价格", "增长"],
    "科技": ["手机", "芯片", "软件", "网络", "电脑", "数据", "人工智能", "程序", "系统", "算法"],
}
FILLER_ZH = ["今天", "我们", "认为", "这个", "非常", "已经", "可能", "报道", "消息", "据说"]


def chinese_corpus(rows: int = 240, seed: int = 0) -> pd.DataFrame:
    """Sentences without spaces, each mixing filler words with words of its topic."""
    rng = np.random.default_rng(seed)
    labels, texts = [], []
    topics = list(TOPICS_ZH)
    for i in range(rows):
        topic = topics[i % len(topics)]
        words = list(rng.choice(TOPICS_ZH[topic], 3)) + list(rng.choice(FILLER_ZH, 4))
        rng.shuffle(words)
        texts.append("".join(words) + "。")
        labels.append(topic)
    return pd.DataFrame({"新闻": texts, "类别": labels})


def english_reviews(rows: int = 200, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    good = ["great", "excellent", "love", "perfect", "happy", "recommend"]
    bad = ["terrible", "broken", "awful", "refund", "disappointed", "worst"]
    filler = ["the", "item", "arrived", "today", "and", "it", "is", "my", "order", "really"]
    texts, labels = [], []
    for i in range(rows):
        positive = i % 2 == 0
        words = list(rng.choice(good if positive else bad, 2)) + list(rng.choice(filler, 5))
        rng.shuffle(words)
        texts.append(" ".join(words) + f" https://shop.example.com/item/{i}")
        labels.append("pos" if positive else "neg")
    return pd.DataFrame({"review": texts, "sentiment": labels})
