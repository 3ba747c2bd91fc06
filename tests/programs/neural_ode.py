"""A neural ODE fitted to a spiral trajectory, integrated with fixed-step Euler."""

import numpy as np


def mlp_dynamics(z, t, params):
    W1, b1, W2, b2 = params
    h = np.tanh(z @ W1 + b1 + t)
    return h @ W2 + b2


def linear_dynamics(z, t, params):
    A = params[0]
    return z @ A


def odeint_euler(func, z0, t0, t1, params, n_steps=20):
    dt = (t1 - t0) / n_steps
    z = z0
    t = t0
    trajectory = [z0]
    for _ in range(n_steps):
        z = z + dt * func(z, t, params)
        t = t + dt
        trajectory.append(z)
    return np.array(trajectory)


def trajectory_loss(params, z0, targets, dynamics=mlp_dynamics):
    traj = odeint_euler(dynamics, z0, 0.0, 1.0, params, n_steps=len(targets) - 1)
    return np.mean((traj - targets) ** 2)


def init_params(dim, hidden, rng):
    return [
        0.5 * rng.normal(size=(dim, hidden)),
        np.zeros(hidden),
        0.5 * rng.normal(size=(hidden, dim)),
        np.zeros(dim),
    ]


def spiral(n=11):
    t = np.linspace(0, 1, n)
    return np.stack([np.exp(-t) * np.cos(3 * t), np.exp(-t) * np.sin(3 * t)], axis=1)


if __name__ == "__main__":
    import tangent
    from _fd import check_gradient

    rng = np.random.default_rng(0)
    targets = spiral()
    z0 = targets[0]
    params = init_params(2, 8, rng)

    def loss(params):
        return trajectory_loss(params, z0, targets)

    grad_loss = tangent.grad(loss)
    check_gradient(loss, grad_loss(params), params)
    for it in range(50):
        grads = grad_loss(params)
        params = [p - 0.2 * g for p, g in zip(params, grads)]
    print("final loss", loss(params))
