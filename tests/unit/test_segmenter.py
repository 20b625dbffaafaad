"""`RfmSegmenter` is a scikit-learn estimator: it passes the library's own checks."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from sklearn.base import BaseEstimator
from sklearn.utils.estimator_checks import parametrize_with_checks

from offline.segmenter import RfmSegmenter

THREE_COLUMNS = (
    "RfmSegmenter with its RFM transforms takes exactly the three RFM columns; this check "
    "fits on data of another width (the same check passes on the transform-free instance)"
)
# Which checks do not apply to the RFM instance, and why. The instance without
# transforms (any width) runs all of them.
WIDTH_DEPENDENT = (
    "check_clustering",
    "check_dtype_object",
    "check_estimators_dtypes",
    "check_estimators_fit_returns_self",
    "check_estimators_overwrite_params",
    "check_fit2d_1sample",
    "check_fit_check_is_fitted",
    "check_fit_idempotent",
    "check_n_features_in",
    "check_n_features_in_after_fitting",
    "check_positive_only_tag_during_fit",
    "check_readonly_memmap_input",
)
NOT_FOR_RFM_COLUMNS = dict.fromkeys(WIDTH_DEPENDENT, THREE_COLUMNS)
NO_ARRAY_API = "no array API support: the segmenter works on NumPy arrays"


def expected_failures(estimator: BaseEstimator) -> dict[str, str]:
    failing = {"check_array_api_input": NO_ARRAY_API}
    if getattr(estimator, "transforms", None) is not None:
        failing.update(NOT_FOR_RFM_COLUMNS)
    return failing


@pytest.mark.filterwarnings("ignore")
@parametrize_with_checks(
    [RfmSegmenter(k=3, transforms=None), RfmSegmenter(k=3)],
    expected_failed_checks=expected_failures,
)
def test_scikit_learn_conformance(
    estimator: BaseEstimator, check: Callable[[BaseEstimator], None]
) -> None:
    check(estimator)


def test_the_rfm_instance_refuses_other_widths_and_negative_values() -> None:
    with pytest.raises(ValueError, match="needs 3 feature columns"):
        RfmSegmenter(k=2).fit([[1.0, 2.0], [3.0, 4.0], [5.0, 6.0]])
    with pytest.raises(ValueError, match="Negative values"):
        RfmSegmenter(k=2).fit([[1.0, 2.0, -3.0], [3.0, 4.0, 5.0], [5.0, 6.0, 7.0]])
