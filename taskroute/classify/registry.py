"""The policy's classifier, built by the factory its `classifier: use:` names.

A classifier is a factory `(ClassifierSettings) -> Classifier` registered in
`taskroute.plugins.CLASSIFIERS`: the bundled `linear` one (`learned.build`) and a plugin's
entry point in the `taskroute.classifiers` group alike. The factory reads its own settings from
`settings.options` (and `settings.model_file`) and raises ValueError, in a plain sentence, for
ones it does not take.
"""

from __future__ import annotations

from collections.abc import Callable

from taskroute.classify.base import Classifier
from taskroute.exceptions import PolicyError
from taskroute.plugins import CLASSIFIERS
from taskroute.policy.model import ClassifierSettings, Policy

ClassifierFactory = Callable[[ClassifierSettings], Classifier]


def build_classifier(policy: Policy) -> Classifier:
    """The classifier the policy names (`PluginError` when its plugin does not import)."""
    settings = policy.classifier
    factory: ClassifierFactory = CLASSIFIERS.load(settings.use)
    try:
        with CLASSIFIERS.calling(settings.use):
            classifier = factory(settings)
    except ValueError as exc:
        raise PolicyError(f"classifier '{settings.use}': {exc}", file=policy.source,
                          line=settings.line or None, key="classifier") from None
    if not callable(getattr(classifier, "predict", None)):
        raise PolicyError(f"classifier '{settings.use}' built {type(classifier).__name__}, "
                          "which has no predict(text) method", file=policy.source,
                          key="classifier")
    return classifier
