"""Differential privacy: the Rényi-DP accounting of the sampled Gaussian mechanism that DP-SGD runs
(``sampledgaussian``: its RDP at each order; ``accountant``: RDP summed over steps, converted to an
(epsilon, delta) guarantee, and the noise multiplier that reaches a target epsilon)."""
