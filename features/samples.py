"""Data the project ships (data/README.md says where each comes from)."""

from pathlib import Path

DATA_DIR = Path(__file__).resolve().parent.parent / "data"
TAOBAO_SAMPLE = DATA_DIR / "taobao_user_behavior_sample.csv"  # 96,168 Taobao UserBehavior rows
