"""Naming a prompt's task class: the `Classifier` Protocol and the model that ships."""

from taskroute.classify.base import Classifier, Prediction
from taskroute.classify.learned import LinearTaskClassifier

__all__ = ["Classifier", "LinearTaskClassifier", "Prediction"]
