"""System identification of a damped pendulum integrated with classical Runge-Kutta (RK4)."""

import numpy as np


def pendulum_rhs(state, t, g_over_l, damping):
    theta, omega = state[0], state[1]
    return np.array([omega, -g_over_l * np.sin(theta) - damping * omega])


def rk4_step(f, y, t, dt, *args):
    k1 = f(y, t, *args)
    k2 = f(y + 0.5 * dt * k1, t + 0.5 * dt, *args)
    k3 = f(y + 0.5 * dt * k2, t + 0.5 * dt, *args)
    k4 = f(y + dt * k3, t + dt, *args)
    return y + dt / 6.0 * (k1 + 2 * k2 + 2 * k3 + k4)


def integrate(f, y0, ts, *args):
    ys = [y0]
    y = y0
    for i in range(len(ts) - 1):
        y = rk4_step(f, y, ts[i], ts[i + 1] - ts[i], *args)
        ys.append(y)
    return np.stack(ys)


def fit_loss(log_params, y0, ts, observed):
    g_over_l, damping = np.exp(log_params)
    traj = integrate(pendulum_rhs, y0, ts, g_over_l, damping)
    return np.sum((traj[:, 0] - observed) ** 2)


def simulate_observations(seed=14):
    rng = np.random.default_rng(seed)
    ts = np.linspace(0.0, 3.0, 16)
    y0 = np.array([1.0, 0.0])
    traj = integrate(pendulum_rhs, y0, ts, 9.81, 0.3)
    return y0, ts, traj[:, 0] + 0.01 * rng.normal(size=len(ts))


if __name__ == "__main__":
    import tangent

    y0, ts, observed = simulate_observations()
    log_params = np.log(np.array([8.0, 0.5]))
    dloss = tangent.grad(fit_loss)
    for it in range(100):
        log_params = log_params - 0.002 * dloss(log_params, y0, ts, observed)
    print("g/l, damping =", np.exp(log_params))
