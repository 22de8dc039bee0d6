"""Feature types. Importing this package registers every built-in type."""
from forgeml.features import category, date, image, number, text  # noqa: F401  (registration)
from forgeml.features.base import FEATURE_TYPES, Feature, FitContext, OutputSpec, build_feature, feature_from_json

__all__ = ["FEATURE_TYPES", "Feature", "FitContext", "OutputSpec", "build_feature", "feature_from_json"]
