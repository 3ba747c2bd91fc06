"""REINFORCE on a contextual bandit with a linear softmax policy and a baseline."""

import numpy as np


def log_softmax(logits):
    shifted = logits - logits.max(axis=1, keepdims=True)
    return shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))


def policy_log_probs(theta, states):
    return log_softmax(states @ theta)


def surrogate_objective(theta, states, actions, returns, entropy_coef=0.01):
    logp = policy_log_probs(theta, states)
    chosen = logp[np.arange(len(actions)), actions]
    advantages = returns - returns.mean()
    probs = np.exp(logp)
    entropy = -np.sum(probs * logp, axis=1)
    return -np.mean(chosen * advantages) - entropy_coef * np.mean(entropy)


def rollout(theta, rng, n=64, n_actions=3):
    states = rng.normal(size=(n, theta.shape[0]))
    probs = np.exp(policy_log_probs(theta, states))
    actions = np.array([rng.choice(n_actions, p=p) for p in probs])
    best = np.argmax(states[:, :n_actions], axis=1)
    returns = (actions == best).astype(float) + 0.1 * rng.normal(size=n)
    return states, actions, returns


if __name__ == "__main__":
    import tangent

    rng = np.random.default_rng(0)
    theta = np.zeros((4, 3))
    dsurrogate = tangent.grad(surrogate_objective)
    for it in range(30):
        states, actions, returns = rollout(theta, rng)
        theta = theta - 1.0 * dsurrogate(theta, states, actions, returns)
        if it % 10 == 0:
            print(f"iter {it}: mean return {returns.mean():.3f}")
