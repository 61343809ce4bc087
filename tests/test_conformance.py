"""Every registered model runs the conformance suite (recseek.testing.conformance)."""


from recseek.models import available
from recseek.testing.conformance import RecommenderConformance

MODEL_NAMES = [cls.name for cls in available()]



def _make(name: str) -> type:
    return type(f"Test{name}", (RecommenderConformance,), {"model_name": name})


for _n in MODEL_NAMES:
    globals()[f"Test{_n}"] = _make(_n)
