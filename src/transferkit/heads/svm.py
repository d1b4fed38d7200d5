"""An RBF-kernel SVM (scikit-learn's ``SVC``) as a head: the classical baseline, saved without pickle.

Probabilities are those of ``CalibratedClassifierCV(SVC(), method="temperature", ensemble=False)``
(scikit-learn's replacement for the deprecated ``SVC(probability=True)``): one-vs-one decision
values (libsvm's ``svm_predict_values``), turned into one-vs-rest scores (votes plus bounded
confidences, ``SVC.decision_function``), then ``softmax(β · scores)`` with one inverse
temperature β fitted on cross-validated scores. One temperature keeps the SVM's own decision
(the argmax is ``SVC.predict``'s); per-class Platt sigmoids do not, and on 10 images per class
they cost the HOG baseline 2 points of accuracy (measured). The support vectors,
coefficients and β are buffers, so a checkpoint is plain tensors (``weights_only=True``).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor, nn

from transferkit.errors import ConfigError
from transferkit.heads.base import heads


@heads.register("svm")
class KernelSVMHead(nn.Module):
    """``log P(class | features)`` of a calibrated RBF SVM; ``softmax`` of it is ``predict_proba``.

    Args:
        in_features: Feature width.
        num_classes: Number of classes (all present when fitting).
        n_support: Support vectors per class (``SVC.n_support_``); fixes the buffers' shapes.

    Shape:
        features: (N, in_features). Returns (N, num_classes) log-probabilities.
    """

    def __init__(self, in_features: int, num_classes: int, n_support: Sequence[int] = ()) -> None:
        super().__init__()
        self.in_features = in_features
        self.num_classes = num_classes
        self.n_support = [int(n) for n in n_support] or [1] * num_classes
        total, pairs = sum(self.n_support), num_classes * (num_classes - 1) // 2
        f64 = torch.float64
        self.register_buffer("mean", torch.zeros(in_features, dtype=f64))
        self.register_buffer("scale", torch.ones(in_features, dtype=f64))
        self.register_buffer("support", torch.zeros(total, in_features, dtype=f64))
        self.register_buffer("dual_coef", torch.zeros(max(1, num_classes - 1), total, dtype=f64))
        self.register_buffer("intercept", torch.zeros(pairs, dtype=f64))
        self.register_buffer("gamma", torch.ones((), dtype=f64))
        self.register_buffer("beta", torch.ones((), dtype=f64))

    def reset(self, num_classes: int) -> None:
        raise ConfigError("An SVM head is fitted by scikit-learn, not reset; refit it on the new classes.")

    @classmethod
    def from_sklearn(cls, calibrated, mean: Tensor | None = None, scale: Tensor | None = None) -> KernelSVMHead:
        """A head from a fitted ``CalibratedClassifierCV(SVC(kernel="rbf"), method="temperature", ensemble=False)``.

        ``mean``/``scale``: the standardisation applied to the SVM's inputs, if any.
        """
        (fitted,) = calibrated.calibrated_classifiers_
        svc = fitted.estimator
        if svc.kernel != "rbf" or fitted.method != "temperature":
            raise ConfigError("KernelSVMHead needs an RBF SVC calibrated with method='temperature'.")
        k = len(svc.classes_)
        head = cls(svc.support_vectors_.shape[1], k, svc.n_support_.tolist())
        dual, intercept = torch.as_tensor(svc.dual_coef_), torch.as_tensor(svc.intercept_)
        if k == 2:  # scikit-learn flips libsvm's signs for two classes only
            dual, intercept = -dual, -intercept
        with torch.no_grad():
            head.support.copy_(torch.as_tensor(svc.support_vectors_))
            head.dual_coef.copy_(dual)
            head.intercept.copy_(intercept)
            head.gamma.fill_(float(svc._gamma))
            head.beta.fill_(float(fitted.calibrators[0].beta_))
            if mean is not None:
                head.mean.copy_(torch.as_tensor(mean))
            if scale is not None:
                head.scale.copy_(torch.as_tensor(scale))
        return head

    def decision(self, features: Tensor) -> Tensor:
        """One-vs-one decision values for pairs (0,1), (0,2), …, (1,2), … as libsvm orders them. (N, K(K-1)/2)."""
        z = (features.to(self.support.dtype) - self.mean) / self.scale  # float64 unless cast (e.g. for export)
        # ||z - s||² as one matrix product (cdist picks its algorithm by batch size, which export cannot trace)
        squared = z.pow(2).sum(1, keepdim=True) - 2 * z @ self.support.T + self.support.pow(2).sum(1)
        kernel = torch.exp(-self.gamma * squared.clamp_min(0))
        starts = [0]
        for n in self.n_support:
            starts.append(starts[-1] + n)
        columns = []
        for i in range(self.num_classes):
            for j in range(i + 1, self.num_classes):
                si, sj = slice(starts[i], starts[i + 1]), slice(starts[j], starts[j + 1])
                columns.append(kernel[:, si] @ self.dual_coef[j - 1, si] + kernel[:, sj] @ self.dual_coef[i, sj])
        return torch.stack(columns, 1) + self.intercept

    def scores(self, features: Tensor) -> Tensor:
        """``SVC.decision_function``: (N,) for two classes, else one-vs-rest scores (N, K)."""
        ovo = self.decision(features)
        if self.num_classes == 2:
            return -ovo[:, 0]
        return ovr_scores(ovo, self.num_classes)

    def forward(self, features: Tensor) -> Tensor:
        scores = self.scores(features)
        if self.num_classes == 2:  # scikit-learn's two-class logits: (-x, x)
            scores = torch.stack([-scores, scores], 1)
        dtype = features.dtype if features.is_floating_point() else torch.float32
        return torch.log_softmax(self.beta * scores, dim=1).to(dtype)


def ovr_scores(ovo: Tensor, k: int) -> Tensor:
    """scikit-learn's ``_ovr_decision_function``: votes plus confidences squashed into (-1/3, 1/3).

    Shape:
        ovo: (N, K(K-1)/2) decision values, positive meaning the first class of the pair. Returns (N, K).
    """
    votes = ovo.new_zeros(ovo.shape[0], k)
    confidence = ovo.new_zeros(ovo.shape[0], k)
    pair = 0
    for i in range(k):
        for j in range(i + 1, k):
            d = ovo[:, pair]
            confidence[:, i] += d
            confidence[:, j] -= d
            votes[:, i] += (d >= 0).to(ovo.dtype)  # libsvm: d > 0 votes i; scikit-learn: d < 0 votes j
            votes[:, j] += (d < 0).to(ovo.dtype)
            pair += 1
    return votes + confidence / (3 * (confidence.abs() + 1))
