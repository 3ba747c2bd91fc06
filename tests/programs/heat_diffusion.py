"""1-D heat equation, explicit finite differences: recover the diffusivity and the initial
temperature profile from a measured final profile."""

import numpy as np


def laplacian(u, dx):
    lap = np.zeros_like(u)
    lap[1:-1] = (u[2:] - 2.0 * u[1:-1] + u[:-2]) / dx ** 2
    return lap


def step(u, kappa, dt, dx, source=None):
    u_new = u + dt * kappa * laplacian(u, dx)
    if source is not None:
        u_new = u_new + dt * source
    # Dirichlet boundaries: the rod's ends are held at zero
    u_new[0] = 0.0
    u_new[-1] = 0.0
    return u_new


def simulate(u0, kappa, n_steps=40, dt=1e-3, length=1.0):
    nx = u0.shape[0]
    dx = length / (nx - 1)
    u = u0.copy()
    for _ in range(n_steps):
        u = step(u, kappa, dt, dx)
    return u


def simulate_periodic(u0, kappa, n_steps=40, dt=1e-3, dx=0.05):
    """Periodic rod: the stencil wraps around with np.roll."""
    u = u0
    for _ in range(n_steps):
        u = u + dt * kappa * (np.roll(u, 1) - 2 * u + np.roll(u, -1)) / dx ** 2
    return u


def initial_profile(nx=21):
    x = np.linspace(0.0, 1.0, nx)
    return np.sin(np.pi * x) + 0.5 * np.sin(3 * np.pi * x)


if __name__ == "__main__":
    import tangent
    from _fd import check_gradient

    u0 = initial_profile()
    observed = simulate(u0, kappa=0.8)

    def misfit(kappa, u_init):
        u_final = simulate(u_init, kappa)
        return 0.5 * np.sum((u_final - observed) ** 2)

    def periodic_energy(u_init):
        return np.sum(simulate_periodic(u_init, 0.5) ** 2)

    dmisfit = tangent.grad(misfit)
    check_gradient(misfit, dmisfit(0.3, u0), 0.3, u0)
    kappa = 0.3
    for it in range(60):
        kappa -= 0.3 * dmisfit(kappa, u0)
    print("recovered kappa:", kappa)

    denergy = tangent.grad(periodic_energy)
    check_gradient(periodic_energy, denergy(u0), u0)
