"""The learned router's inference side: features and a model loaded from plain arrays.

Light on purpose (numpy only): `LearnedRouter.load(path).choose(text)` runs in well under a
millisecond. Training lives in `taskroute.evaluate.train` and needs the `taskroute[eval]` extra.
"""

from taskroute.learned.model import LearnedRouter, pick_model

__all__ = ["LearnedRouter", "pick_model"]
