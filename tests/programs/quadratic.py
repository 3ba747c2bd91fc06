"""Callable objective objects: a quadratic form and a regularised sum of objectives."""

import numpy as np


class Quadratic:
    """f(x) = 1/2 x^T A x - b^T x (A symmetric positive definite)."""

    def __init__(self, a, b):
        self.a = a
        self.b = b

    def __call__(self, x):
        return 0.5 * x @ self.a @ x - self.b @ x

    def minimizer(self):
        return np.linalg.solve(self.a, self.b)


class LogBarrier:
    def __init__(self, lower, upper, strength=0.1):
        self.lower = lower
        self.upper = upper
        self.strength = strength

    def __call__(self, x):
        return -self.strength * np.sum(np.log(x - self.lower) + np.log(self.upper - x))


def total_objective(x, terms):
    return sum(term(x) for term in terms)


def energy(x, quad):
    return quad(x) + 0.1 * np.sum(x ** 4)


def gradient_descent(f, df, x0, lr=0.1, steps=50):
    x = x0
    for _ in range(steps):
        x = x - lr * df(x)
    return x, f(x)


def random_spd(n, rng):
    M = rng.normal(size=(n, n))
    return M @ M.T / n + np.eye(n)


if __name__ == "__main__":
    import tangent

    rng = np.random.default_rng(0)
    A = random_spd(4, rng)
    b = rng.normal(size=4)
    quad = Quadratic(A, b)
    x, fx = gradient_descent(quad, tangent.grad(quad), np.zeros(4))
    print("distance to the minimizer:", np.linalg.norm(x - quad.minimizer()))

    barrier = LogBarrier(-2.0, 2.0)
    dtotal = tangent.grad(total_objective)
    x = np.zeros(4)
    for _ in range(50):
        x = x - 0.1 * dtotal(x, [quad, barrier])
    print("constrained solution:", x)
