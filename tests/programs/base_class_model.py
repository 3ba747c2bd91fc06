"""A small estimator hierarchy: the base class defines the loss, subclasses the prediction."""

import numpy as np


class Regressor:
    def __init__(self, coef, intercept=0.0, l2=0.0):
        self.coef = coef
        self.intercept = intercept
        self.l2 = l2

    def predict(self, X):
        raise NotImplementedError

    def penalty(self):
        return 0.5 * self.l2 * np.sum(self.coef ** 2)

    def loss(self, X, y):
        residual = self.predict(X) - y
        return np.mean(residual ** 2) + self.penalty()


class LinearRegressor(Regressor):
    def predict(self, X):
        return X @ self.coef + self.intercept


class ExpRegressor(Regressor):
    """Log-linear model: y ~ exp(X coef + intercept)."""

    def predict(self, X):
        return np.exp(X @ self.coef + self.intercept)


class PolynomialRegressor(LinearRegressor):
    def __init__(self, coef, intercept=0.0, l2=0.0, degree=2):
        super().__init__(coef, intercept, l2)
        self.degree = degree

    def features(self, X):
        return np.hstack([X ** k for k in range(1, self.degree + 1)])

    def predict(self, X):
        return super().predict(self.features(X))


def make_data(seed=10, n=25):
    rng = np.random.default_rng(seed)
    X = rng.uniform(-1, 1, size=(n, 2))
    y = np.exp(0.3 * X[:, 0] - 0.5 * X[:, 1]) + 0.05 * rng.normal(size=n)
    return X, y


if __name__ == "__main__":
    import tangent

    X, y = make_data()
    for model in [LinearRegressor(np.zeros(2), l2=0.1), ExpRegressor(np.zeros(2)),
                  PolynomialRegressor(np.zeros(4), degree=2)]:
        dloss = tangent.grad(model.loss, wrt="self")
        for it in range(100):
            g = dloss(X, y)
            model.coef = model.coef - 0.2 * g["coef"]
            model.intercept = model.intercept - 0.2 * g["intercept"]
        print(type(model).__name__, "loss", model.loss(X, y))
