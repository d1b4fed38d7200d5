"""Source-label posteriors for a backbone without its source classifier.

N-LEEP (Li et al., CVPR 2021): reduce the features with PCA, fit a Gaussian mixture and use
its component posteriors as the "source label" distribution of LEEP and NCE.
"""

from __future__ import annotations

import numpy as np


def gmm_posteriors(features: np.ndarray, num_classes: int, seed: int = 0) -> np.ndarray:
    """(N, Z) soft assignments to ``Z = min(N // 4, 5 × num_classes)`` Gaussian components."""
    import warnings

    from sklearn.decomposition import PCA
    from sklearn.exceptions import ConvergenceWarning
    from sklearn.mixture import GaussianMixture
    from sklearn.preprocessing import StandardScaler

    n, d = features.shape
    components = max(2, min(n // 4, 5 * num_classes))
    varying = features[:, features.std(0) > 1e-12]
    if varying.shape[1] == 0:  # constant features carry no information: a uniform "source"
        return np.full((n, components), 1.0 / components)
    dims = max(1, min(varying.shape[1], n - 1, 64))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        reduced = PCA(n_components=dims, random_state=seed).fit_transform(StandardScaler().fit_transform(varying))
        gmm = GaussianMixture(components, covariance_type="diag", random_state=seed, reg_covar=1e-4)
        return gmm.fit(reduced).predict_proba(reduced)
